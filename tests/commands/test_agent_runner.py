"""Executing runs: attempts recorded around the LLM call, retries, failures, races with cancel and crashes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from uuid import UUID

import pytest

from adapters.event_store.application import StoreApplication, memory_env
from adapters.event_store.store import EventSourcedStore
from commands import agents
from commands.agent_runner import AgentRunner
from commands.budgets import TenantBudgets
from commands.llm import LlmError, LlmReply, LlmRequest
from domain.agents.agent import Fallback
from domain.agents.agent_run import AgentRun, AgentRunSucceeded
from domain.agents.pricing import Price, PriceTable
from domain.aggregate import CommandContext
from gateways.llm.anthropic_messages import AnthropicMessages
from gateways.llm.openai_chat import OpenAIChat
from gateways.llm.resilience import Router
from gateways.llm.scripted import ScriptedProvider
from tests.gateways.fake_llm import FakeLlmServer
from tests.strategies import Clock

PRICES = PriceTable(prices={"scripted/*": Price(input_per_million=Decimal(1), output_per_million=Decimal(2))})


class FailingProvider:
    name = "failing"

    def __init__(self, *errors: LlmError) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.fallback = ScriptedProvider()

    async def close(self) -> None:
        return None

    async def complete(self, request: LlmRequest) -> LlmReply:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return await self.fallback.complete(request)


@pytest.fixture
async def store() -> AsyncIterator[EventSourcedStore]:
    made = EventSourcedStore(StoreApplication(env=memory_env()))
    yield made
    await made.close()


def runner(store: EventSourcedStore, llm: object, clock: Clock) -> AgentRunner:
    def context(tenant: str, correlation: UUID) -> CommandContext:
        ctx = clock.ctx("agent-worker")
        return CommandContext(
            at=ctx.at, tenant_id=tenant, actor="agent-worker", correlation_id=correlation, causation_id=correlation
        )

    return AgentRunner(
        store=store,
        llm=llm,  # type: ignore[arg-type]
        prices=PRICES,
        context=context,
        budgets=TenantBudgets(store),
        max_attempts=3,
    )


async def requested(store: EventSourcedStore, clock: Clock) -> UUID:
    agent = await agents.register_agent(
        store, clock.ctx(), agents.RegisterAgent(name="w", provider="scripted", model="s1", system_prompt="Be brief.")
    )
    run = await agents.request_agent_run(
        store, clock.ctx(), agents.RequestAgentRun(agent_id=agent.id, prompt="hello there")
    )
    return run.id


async def test_a_run_succeeds_with_usage_cost_and_the_requests_correlation(store: EventSourcedStore) -> None:
    clock = Clock()
    run_id = await requested(store, clock)
    result = await runner(store, ScriptedProvider({"hello": "Hi!"}), clock).execute(run_id)
    run = await store.get(AgentRun, run_id)
    assert result.outcome == "succeeded"
    assert (run.status, run.output, run.tokens_in, run.tokens_out) == ("succeeded", "Hi!", 4, 1)
    assert run.cost == Decimal("0.00000600")  # 4 in at 1/M + 1 out at 2/M
    events = store.events_of(run_id)
    assert {e.metadata.correlation_id for e in events} == {run.correlation_id}
    assert [type(e).__name__ for e in events] == ["AgentRunRequested", "AttemptStarted", "AgentRunSucceeded"]


async def test_a_retryable_failure_asks_for_a_retry_until_the_last_attempt(store: EventSourcedStore) -> None:
    clock = Clock()
    run_id = await requested(store, clock)
    busy = LlmError("429", retryable=True, retry_after=7)
    llm = FailingProvider(busy, busy, busy)
    work = runner(store, llm, clock)
    first, second, third = [await work.execute(run_id) for _ in range(3)]
    assert (first.outcome, first.retry_after) == ("retry", 7)
    assert second.outcome == "retry"
    assert third.outcome == "failed"
    run = await store.get(AgentRun, run_id)
    assert run.status == "failed"
    assert [a.status for a in run.attempts] == ["failed", "failed", "failed"]
    assert (await work.execute(run_id)).outcome == "skipped"
    assert llm.calls == 3


async def test_a_bad_request_fails_the_run_at_once(store: EventSourcedStore) -> None:
    clock = Clock()
    run_id = await requested(store, clock)
    result = await runner(store, FailingProvider(LlmError("400 bad", retryable=False)), clock).execute(run_id)
    assert result.outcome == "failed"
    assert (await store.get(AgentRun, run_id)).error.startswith("after 1 attempt(s): 400 bad")


async def test_a_worker_that_died_mid_call_leaves_an_abandoned_attempt_and_the_retry_succeeds(
    store: EventSourcedStore,
) -> None:
    clock = Clock()
    run_id = await requested(store, clock)
    await agents.start_run_attempt(
        store, clock.ctx(), agents.StartRunAttempt(run_id=run_id, provider="scripted", model="s1")
    )  # the dead worker's attempt: started, never finished
    assert (await runner(store, ScriptedProvider(), clock).execute(run_id)).outcome == "succeeded"
    run = await store.get(AgentRun, run_id)
    assert [a.status for a in run.attempts] == ["abandoned", "succeeded"]
    assert (await runner(store, ScriptedProvider(), clock).execute(run_id)).outcome == "skipped"  # never twice


async def test_a_cancelled_run_is_not_called(store: EventSourcedStore) -> None:
    clock = Clock()
    run_id = await requested(store, clock)
    await agents.cancel_agent_run(store, clock.ctx(), agents.CancelAgentRun(run_id=run_id))
    llm = FailingProvider()
    assert (await runner(store, llm, clock).execute(run_id)).outcome == "skipped"
    assert llm.calls == 0


async def test_an_agent_whose_endpoint_answers_500_is_answered_by_its_fallback_through_the_official_sdks(
    store: EventSourcedStore,
) -> None:
    server = FakeLlmServer()
    llm = Router(
        {
            "openai": OpenAIChat(api_key="test-key", base_url="http://127.0.0.1:9/v1", timeout=5),
            "anthropic": AnthropicMessages(api_key="test-key", base_url=server.url, timeout=5),
        }
    )
    try:
        clock = Clock()
        agent = await agents.register_agent(
            store,
            clock.ctx(),
            agents.RegisterAgent(
                name="local",
                provider="openai_compatible",
                model="llama3",
                base_url=f"{server.url}/v1",  # the agent's own server, not the provider's default
                fallbacks=[Fallback(provider="anthropic", model="claude-backup")],
                json_output=True,
            ),
        )
        run_id = (
            await agents.request_agent_run(store, clock.ctx(), agents.RequestAgentRun(agent_id=agent.id, prompt="hi"))
        ).id
        server.fail_next(500)
        assert (await runner(store, llm, clock).execute(run_id)).outcome == "succeeded"
    finally:
        await llm.close()
        server.stop()
    (primary_path, primary), (fallback_path, fallback) = server.requests
    assert (primary_path, primary["model"], primary["response_format"]) == (
        "/v1/chat/completions",
        "llama3",
        {"type": "json_object"},
    )
    assert (fallback_path, fallback["model"]) == ("/v1/messages", "claude-backup")
    assert "JSON" in fallback["system"]
    run = await store.get(AgentRun, run_id)
    assert (run.output, run.attempts[-1].provider, run.attempts[-1].model) == (
        "Hello from claude-backup",
        "anthropic",
        "claude-backup",
    )
    succeeded = store.events_of(run_id)[-1]
    assert isinstance(succeeded, AgentRunSucceeded)
    assert (succeeded.provider, succeeded.model) == ("anthropic", "claude-backup")
    assert len(succeeded.fallback_errors) == 1
    assert "500" in succeeded.fallback_errors[0]
