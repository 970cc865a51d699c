"""Budgets enforced by the agent worker before the call: refusals, strictness under concurrency, settlement."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from uuid import UUID

import pytest

from adapters.event_store.application import StoreApplication, memory_env
from adapters.event_store.store import EventSourcedStore
from commands import agents
from commands.agent_runner import AgentRunner
from commands.budgets import SetBudget, TenantBudgets, set_budget
from commands.errors import ConcurrencyError
from commands.llm import LlmError, LlmReply, LlmRequest
from domain.agents.agent_run import AgentRun
from domain.agents.budget import Budget, budget_id_of
from domain.agents.budget_ledger import BudgetLedger, ledger_id_of, worst_case_tokens
from domain.agents.pricing import Price, PriceTable
from domain.aggregate import CommandContext
from gateways.llm.openai_chat import OpenAIChat
from gateways.llm.scripted import ScriptedProvider
from tests.commands.test_agent_runner import FailingProvider
from tests.gateways.fake_llm import FakeLlmServer
from tests.strategies import Clock

PRICES = PriceTable(prices={"scripted/*": Price(input_per_million=Decimal(1), output_per_million=Decimal(2))})
MONTH = "2026-01"  # the Clock's runs are requested in January 2026


class GreedyProvider:
    """Answers every call with exactly the run's worst case, so that a settled run frees nothing of its budget."""

    name = "scripted"

    def __init__(self) -> None:
        self.calls = 0

    async def close(self) -> None:
        return None

    async def complete(self, request: LlmRequest) -> LlmReply:
        self.calls += 1
        await asyncio.sleep(0)  # let the other runs interleave with this one
        return LlmReply(
            text="all of it",
            tokens_in=worst_case_tokens(request.messages, 0),
            tokens_out=request.max_tokens,
            latency_ms=1,
            request_id="greedy",
            provider="scripted",
            model=request.model,
        )


def runner(store: EventSourcedStore, llm: object, clock: Clock) -> AgentRunner:
    def context(tenant: str, correlation: UUID) -> CommandContext:
        at = clock.ctx().at
        return CommandContext(
            at=at, tenant_id=tenant, actor="agent-worker", correlation_id=correlation, causation_id=correlation
        )

    return AgentRunner(
        store=store,
        llm=llm,  # type: ignore[arg-type]
        prices=PRICES,
        context=context,
        budgets=TenantBudgets(store),
        max_attempts=3,
    )


async def agent_of(store: EventSourcedStore, clock: Clock, provider: str = "scripted", **config: object) -> UUID:
    command = agents.RegisterAgent(name="w", provider=provider, model="m1", max_tokens=100, **config)  # type: ignore[arg-type]
    return (await agents.register_agent(store, clock.ctx(), command)).id


async def run_of(store: EventSourcedStore, clock: Clock, agent_id: UUID, prompt: str = "hello there") -> UUID:
    return (
        await agents.request_agent_run(store, clock.ctx(), agents.RequestAgentRun(agent_id=agent_id, prompt=prompt))
    ).id


async def test_the_run_that_would_cross_the_budget_is_refused_before_any_call_reaches_the_llm_server(
    store: EventSourcedStore,
) -> None:
    server = FakeLlmServer()
    llm = OpenAIChat(api_key="test-key", base_url=f"{server.url}/v1", timeout=5)
    try:
        clock = Clock()
        agent = await agent_of(store, clock, provider="openai")
        prompt = "word " * 300  # the server counts 300 tokens in; the worst case is a little more, plus max_tokens
        await set_budget(store, clock.ctx("admin"), SetBudget(tokens_per_day=700))
        first, second = await run_of(store, clock, agent, prompt), await run_of(store, clock, agent, prompt)
        work = runner(store, llm, clock)
        assert (await work.execute(first)).outcome == "succeeded"
        assert len(server.requests) == 1
        result = await work.execute(second)
        assert result.outcome == "refused"
        assert len(server.requests) == 1  # refused before the call
    finally:
        await llm.close()
        server.stop()
    refused = await store.get(AgentRun, second)
    assert refused.status == "refused"
    assert refused.refused_until is not None
    assert refused.refused_until.isoformat() == "2026-01-02T00:00:00+00:00"
    assert "daily token budget of 700 would be exceeded" in refused.error
    assert [type(e).__name__ for e in store.events_of(second)] == ["AgentRunRequested", "AgentRunRefused"]


async def test_concurrent_runs_never_pass_the_last_of_the_budget_together(store: EventSourcedStore) -> None:
    clock = Clock()
    agent = await agent_of(store, clock)
    runs = [await run_of(store, clock, agent) for _ in range(8)]
    worst = worst_case_tokens((await store.get(AgentRun, runs[0])).messages, 100)
    await set_budget(store, clock.ctx("admin"), SetBudget(tokens_per_month=3 * worst))
    llm = GreedyProvider()
    results = await asyncio.gather(*(runner(store, llm, clock).execute(run) for run in runs))
    outcomes = sorted(result.outcome for result in results)
    assert outcomes == ["refused"] * 5 + ["succeeded"] * 3
    assert llm.calls == 3
    ledger = await store.get(BudgetLedger, ledger_id_of("tenant-a", MONTH))
    assert ledger.used_in_month().tokens == 3 * worst
    assert ledger.reservations == {}


async def test_a_tenant_without_a_budget_writes_no_ledger(store: EventSourcedStore) -> None:
    clock = Clock()
    run = await run_of(store, clock, await agent_of(store, clock))
    assert (await runner(store, ScriptedProvider(), clock).execute(run)).outcome == "succeeded"
    assert store.events_of(ledger_id_of("tenant-a", MONTH)) == []


async def test_a_finished_run_settles_its_reservation_with_what_it_used(store: EventSourcedStore) -> None:
    clock = Clock()
    run = await run_of(store, clock, await agent_of(store, clock))
    await set_budget(store, clock.ctx("admin"), SetBudget())  # metered, without a limit
    assert (await runner(store, ScriptedProvider({"hello": "Hi!"}), clock).execute(run)).outcome == "succeeded"
    ledger = await store.get(BudgetLedger, ledger_id_of("tenant-a", MONTH))
    done = await store.get(AgentRun, run)
    assert ledger.reservations == {}
    assert ledger.used_in_month().tokens == done.tokens_in + done.tokens_out
    assert ledger.used_in_month().cost == done.cost


async def test_a_run_cancelled_while_it_waited_for_a_retry_releases_its_reservation(store: EventSourcedStore) -> None:
    clock = Clock()
    run = await run_of(store, clock, await agent_of(store, clock))
    await set_budget(store, clock.ctx("admin"), SetBudget(tokens_per_day=10_000))
    work = runner(store, FailingProvider(LlmError("503", retryable=True)), clock)
    assert (await work.execute(run)).outcome == "retry"
    ledger_id = ledger_id_of("tenant-a", MONTH)
    assert (await store.get(BudgetLedger, ledger_id)).reservations != {}
    await agents.cancel_agent_run(store, clock.ctx(), agents.CancelAgentRun(run_id=run))
    assert (await work.execute(run)).outcome == "skipped"  # the delayed redelivery
    assert (await store.get(BudgetLedger, ledger_id)).reservations == {}


async def test_setting_a_budget_twice_revises_it_and_a_stale_version_is_a_conflict(store: EventSourcedStore) -> None:
    clock = Clock()
    first = await set_budget(store, clock.ctx("admin"), SetBudget(tokens_per_day=10))
    assert (first.created, first.version) == (True, 1)
    second = await set_budget(store, clock.ctx("admin"), SetBudget(cost_per_month=Decimal("2.5"), expected_version=1))
    assert second.version == 2
    budget = await store.get(Budget, budget_id_of("tenant-a"))
    assert (budget.limits.tokens_per_day, budget.limits.cost_per_month) == (None, Decimal("2.5"))
    with pytest.raises(ConcurrencyError):
        await set_budget(store, clock.ctx("admin"), SetBudget(tokens_per_day=5, expected_version=1))


@pytest.fixture
async def memory_store() -> AsyncIterator[EventSourcedStore]:
    made = EventSourcedStore(StoreApplication(env=memory_env()))
    yield made
    await made.close()


async def test_a_new_limit_reaches_a_worker_within_the_cache_time(memory_store: EventSourcedStore) -> None:
    clock = Clock()
    budgets = TenantBudgets(memory_store)
    now = clock.ctx().at
    assert await budgets.limits_of("tenant-a", now) is None
    await set_budget(memory_store, clock.ctx("admin"), SetBudget(tokens_per_day=1))
    assert await budgets.limits_of("tenant-a", now + budgets.ttl / 2) is None  # still the cached answer
    limits = await budgets.limits_of("tenant-a", now + budgets.ttl)
    assert limits is not None
    assert limits.tokens_per_day == 1
