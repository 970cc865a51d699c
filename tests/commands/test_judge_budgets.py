"""Judge calls charged to tenants' budgets: reserved before the call, refused without a call, settled once.

The platform runs on the machine's PostgreSQL and its judges answer through the OpenAI SDK from the local
LLM server (`tests/gateways/fake_llm.py`), which records every request it receives.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import pytest
from eventsourcing.persistence import StoredEvent

from commands import agents, validation
from commands.agent_runner import AgentRunner
from commands.budgets import SetBudget, WorstCase, set_budget, worst_case_of
from commands.validation_runner import ValidationRunner, judge_chain
from domain.agents.agent import Agent
from domain.agents.budget_ledger import (
    BudgetLedger,
    BudgetReserved,
    BudgetSettled,
    day_of,
    judge_charge_id,
    ledger_id_of,
    month_of,
)
from domain.aggregate import CommandContext
from domain.codec import topic_of
from domain.validation.ruleset import Rule
from domain.validation.validation import JudgeCallFailed, JudgeConsulted, Validation
from gateways.llm.openai_chat import OpenAIChat
from ops.bootstrap import Platform, open_platform
from ops.settings import Settings
from projections.budgets import get_budget
from tests.gateways.fake_llm import FakeLlmServer

pytestmark = pytest.mark.integration

TENANT = "acme"
RUBRIC = 'Says "thank you".'
POLITE = Rule(id="polite", kind="llm_judge", params={"agent": "critic", "rubric": RUBRIC})
BRIEF = Rule(id="brief", kind="llm_judge", params={"agent": "critic", "rubric": "Is it brief?"})
VERDICT = '{"score": 0.9, "reason": "it thanks the reader"}'


@pytest.fixture
async def llm(llm_server: FakeLlmServer) -> AsyncIterator[OpenAIChat]:
    """The OpenAI provider on the local server, without the gateway's retries: one failure is one failed call."""
    made = OpenAIChat(api_key="test-key", base_url=f"{llm_server.url}/v1", timeout=5)
    yield made
    await made.close()


@pytest.fixture
async def platform(database_url: str, pg_schema: str) -> AsyncIterator[Platform]:
    settings = Settings(
        database_url=database_url,
        database_schema=pg_schema,
        db_pool_size=6,
        read_pool_size=6,
        judge_max_attempts=2,
        judge_lookup_wait_seconds=0.0,
    )
    async with open_platform(settings) as made:
        yield made


def judges(platform: Platform, llm: OpenAIChat) -> ValidationRunner:
    """The platform's validation worker (its budgets wired by bootstrap), calling the local server."""

    async def agents_caught_up(position: int) -> bool:
        await platform.projectors["agents"].catch_up()
        return True

    return dataclasses.replace(platform.validation_runner(), llm=llm, agents_seen=agents_caught_up)


def runs(platform: Platform, llm: OpenAIChat) -> AgentRunner:
    return dataclasses.replace(platform.agent_runner(), llm=llm)


def ctx(platform: Platform, actor: str = "alice") -> CommandContext:
    return platform.context(tenant_id=TENANT, actor=actor)


async def critic(platform: Platform) -> UUID:
    command = agents.RegisterAgent(name="critic", provider="openai", model="gpt-4o-mini", max_tokens=60)
    return (await agents.register_agent(platform.store, ctx(platform), command)).id


async def requested(platform: Platform, rules: list[Rule], output: str = "Thank you for writing!") -> UUID:
    ruleset = await validation.define_ruleset(
        platform.store, ctx(platform), validation.DefineRuleSet(name="reply", rules=rules, threshold=0.5)
    )
    command = validation.RequestValidation(ruleset_id=ruleset.id, subject_type="text", subject_id="1", output=output)
    return (await validation.request_validation(platform.store, ctx(platform), command)).id


async def worst_case(platform: Platform, agent_id: UUID, validation_id: UUID, rule: Rule) -> WorstCase:
    """What the agent worker would reserve for the same call: one computation for runs and judges."""
    agent = await platform.store.get(Agent, agent_id)
    output = (await platform.store.get(Validation, validation_id)).output
    return worst_case_of(judge_chain(agent, str(rule.params["rubric"]), output), platform.validation_runner().prices)


async def day_of_validation(platform: Platform, validation_id: UUID) -> date:
    return day_of((await platform.store.get(Validation, validation_id)).created_at)


def ledger_events(platform: Platform, day: date) -> list[Any]:
    return platform.store.events_of(ledger_id_of(TENANT, month_of(day)))


def judged_requests(server: FakeLlmServer, rubric: str) -> int:
    return sum(rubric in str(body.get("messages")) for _, body in server.requests)


async def test_a_judge_call_over_an_exhausted_budget_fails_its_rule_and_never_reaches_the_llm_server(
    platform: Platform, llm_server: FakeLlmServer, llm: OpenAIChat
) -> None:
    judge = await critic(platform)
    validation_id = await requested(platform, [POLITE])
    worst = await worst_case(platform, judge, validation_id, POLITE)
    # The month can pay for the judge's worst case alone, not once an agent run has spent anything.
    await set_budget(platform.store, ctx(platform, "admin"), SetBudget(tokens_per_month=worst.tokens))
    writer = await agents.register_agent(
        platform.store,
        ctx(platform),
        agents.RegisterAgent(name="writer", provider="openai", model="gpt-4o-mini", max_tokens=20),
    )
    run = await agents.request_agent_run(
        platform.store, ctx(platform), agents.RequestAgentRun(agent_id=writer.id, prompt="hello there")
    )
    assert (await runs(platform, llm).execute(run.id)).outcome == "succeeded"
    assert len(llm_server.requests) == 1

    assert (await judges(platform, llm).execute(validation_id)).outcome == "completed"

    assert len(llm_server.requests) == 1  # the judge was never asked
    assert judged_requests(llm_server, RUBRIC) == 0
    events = platform.store.events_of(validation_id)
    assert [type(e).__name__ for e in events] == ["ValidationRequested", "JudgeCallFailed", "ValidationCompleted"]
    refusal = events[1]
    assert isinstance(refusal, JudgeCallFailed)
    assert refusal.retryable is False
    assert f"monthly token budget of {worst.tokens} would be exceeded" in refusal.error
    assert f"this judge call may use up to {worst.tokens}" in refusal.error
    done = await platform.store.get(Validation, validation_id)
    [result] = done.results
    assert (result.score, result.passed) == (0.0, False)
    assert result.message == f"judge 'critic' was not consulted: {refusal.error}"
    day = await day_of_validation(platform, validation_id)
    assert [e.charge for e in ledger_events(platform, day)[1:]] == ["run", "run"]  # the agent run's, no judge's


async def test_a_judge_call_within_the_budget_is_reserved_then_settled_with_the_replys_tokens(
    platform: Platform, llm_server: FakeLlmServer, llm: OpenAIChat
) -> None:
    judge = await critic(platform)
    validation_id = await requested(platform, [POLITE])
    worst = await worst_case(platform, judge, validation_id, POLITE)
    await set_budget(platform.store, ctx(platform, "admin"), SetBudget(tokens_per_month=100_000))
    llm_server.reply_next(VERDICT)

    assert (await judges(platform, llm).execute(validation_id)).outcome == "completed"

    assert judged_requests(llm_server, RUBRIC) == 1
    consulted = platform.store.events_of(validation_id)[1]
    assert isinstance(consulted, JudgeConsulted)
    used = consulted.tokens_in + consulted.tokens_out
    assert consulted.tokens_in > 0
    assert consulted.cost > 0
    day = await day_of_validation(platform, validation_id)
    _, reserved, settled = ledger_events(platform, day)
    charge = judge_charge_id(validation_id, POLITE.id)
    assert isinstance(reserved, BudgetReserved)
    assert (reserved.charge, reserved.run_id, reserved.day) == ("judge", charge, day)
    assert (reserved.tokens, reserved.cost) == worst
    assert isinstance(settled, BudgetSettled)
    assert (settled.charge, settled.run_id, settled.reserved_tokens) == ("judge", charge, worst.tokens)
    assert (settled.tokens, settled.cost) == (used, consulted.cost)
    ledger = await platform.store.get(BudgetLedger, ledger_id_of(TENANT, month_of(day)))
    assert ledger.reservations == {}
    assert (ledger.used_in_month().tokens, ledger.used_in_month().cost) == (used, consulted.cost)


class FlakyServer(FakeLlmServer):
    """The local LLM server, failing the first request that contains `flaky` with a 503."""

    def __init__(self, flaky: str) -> None:
        self.flaky, self.failed = flaky, False
        super().__init__()

    def answer(self, path: str, body: dict[str, Any]) -> Any:
        if not self.failed and self.flaky in str(body.get("messages")):
            self.failed = True
            self.fail_next(503)
        return super().answer(path, body)


async def test_a_judge_reply_reused_on_redelivery_is_not_charged_again(platform: Platform) -> None:
    server = FlakyServer("Is it brief?")
    llm = OpenAIChat(api_key="test-key", base_url=f"{server.url}/v1", timeout=5)
    try:
        await critic(platform)
        validation_id = await requested(platform, [POLITE, BRIEF])
        await set_budget(platform.store, ctx(platform, "admin"), SetBudget(cost_per_month=Decimal(10)))
        server.reply_next(VERDICT, times=2)
        worker = judges(platform, llm)
        assert (await worker.execute(validation_id)).outcome == "retry"  # polite judged, brief met a 503
        assert (await worker.execute(validation_id)).outcome == "completed"  # polite's reply reused
        assert (judged_requests(server, RUBRIC), judged_requests(server, "Is it brief?")) == (1, 2)
    finally:
        await llm.close()
        server.stop()
    consulted = [e for e in platform.store.events_of(validation_id) if isinstance(e, JudgeConsulted)]
    assert [e.rule_id for e in consulted] == ["polite", "brief"]
    day = await day_of_validation(platform, validation_id)
    polite, brief = judge_charge_id(validation_id, POLITE.id), judge_charge_id(validation_id, BRIEF.id)
    charges = [(type(e).__name__, e.run_id, e.tokens) for e in ledger_events(platform, day)[1:]]
    assert [(kind, charge) for kind, charge, _ in charges].count(("BudgetSettled", polite)) == 1
    assert [(kind, charge) for kind, charge, _ in charges].count(("BudgetReserved", polite)) == 1
    # The brief judge's failed call settled at 0, and its second call was reserved and settled again.
    assert [(kind, tokens) for kind, charge, tokens in charges if charge == brief and kind == "BudgetSettled"] == [
        ("BudgetSettled", 0),
        ("BudgetSettled", consulted[1].tokens_in + consulted[1].tokens_out),
    ]
    ledger = await platform.store.get(BudgetLedger, ledger_id_of(TENANT, month_of(day)))
    assert ledger.reservations == {}
    assert ledger.used_in_month().tokens == sum(e.tokens_in + e.tokens_out for e in consulted)
    assert ledger.used_in_month().cost == sum((e.cost for e in consulted), Decimal(0))


async def test_the_budgets_read_model_counts_a_judges_tokens_but_not_as_a_run(
    platform: Platform, llm_server: FakeLlmServer, llm: OpenAIChat
) -> None:
    await critic(platform)
    validation_id = await requested(platform, [POLITE])
    await set_budget(platform.store, ctx(platform, "admin"), SetBudget(tokens_per_month=100_000))
    llm_server.reply_next(VERDICT)
    assert (await judges(platform, llm).execute(validation_id)).outcome == "completed"
    consulted = platform.store.events_of(validation_id)[1]
    assert isinstance(consulted, JudgeConsulted)

    await platform.projectors["budgets"].catch_up()
    day = await day_of_validation(platform, validation_id)
    async with platform.pool.acquire() as conn:
        budget = await get_budget(conn, TENANT, day)
    assert budget is not None
    for period in ("day", "month"):
        assert budget[period]["runs"] == 0
        assert budget[period]["spent_tokens"] == consulted.tokens_in + consulted.tokens_out
        assert budget[period]["spent_cost"] == consulted.cost
        assert (budget[period]["reserved_tokens"], budget[period]["reserved_cost"]) == (0, 0)


async def test_ledger_events_stored_before_judges_were_charged_read_as_runs(platform: Platform) -> None:
    """Version 1 `BudgetReserved`/`BudgetSettled` (no `charge`) load through the upcaster as runs, in the ledger
    and in the read model."""
    today = date.today()
    ledger, opened = BudgetLedger.open(ctx(platform, "agent-worker"), month=month_of(today))
    await platform.store.save(ledger, [opened])
    run_id = UUID(int=7)
    reserved = {"run_id": str(run_id), "day": today.isoformat(), "tokens": 120, "cost": "0.01"}
    settled = {"run_id": str(run_id), "day": today.isoformat(), "reserved_tokens": 120, "reserved_cost": "0.01"}
    settled |= {"tokens": 30, "cost": "0.002"}
    stamp = msgspec.to_builtins(opened)
    v1 = [(BudgetReserved, 2, reserved), (BudgetSettled, 3, settled)]
    platform.store.app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=ledger.id,
                originator_version=version,
                topic=topic_of(kind),
                state=msgspec.json.encode(
                    {"originator_id": stamp["originator_id"], "originator_version": version}
                    | {"timestamp": stamp["timestamp"], "metadata": stamp["metadata"]}
                    | fields
                ),
            )
            for kind, version, fields in v1
        ]
    )
    _, old_reserved, old_settled = platform.store.events_of(ledger.id)
    assert (old_reserved.charge, old_settled.charge) == ("run", "run")
    loaded = await platform.store.get(BudgetLedger, ledger.id)
    assert (loaded.reservations, loaded.used_in_month().tokens) == ({}, 30)
    await platform.projectors["budgets"].catch_up()
    async with platform.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT runs, spent_tokens FROM budget_usage WHERE tenant_id = $1", TENANT)
    assert row is not None
    assert (row["runs"], row["spent_tokens"]) == (1, 30)
