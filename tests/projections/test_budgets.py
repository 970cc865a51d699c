"""The budgets read model and refused runs in the executions read model: right rows, once, and rebuilt alike."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import pytest

from commands import agents
from commands.agent_runner import AgentRunner
from commands.budgets import SetBudget, TenantBudgets, set_budget
from domain.aggregate import CommandContext
from gateways.llm.scripted import ScriptedProvider
from ops.bootstrap import Platform
from ops.prices import DEFAULT_PRICES
from projections.budgets import get_budget
from tests.projections.conftest import checksums, rebuild
from tests.projections.envelopes import envelopes_of
from tests.strategies import Clock

pytestmark = pytest.mark.integration
NAMES = ["budgets", "executions", "token_usage"]


async def spend(platform: Platform, clock: Clock) -> list[UUID]:
    """Four runs of acme, one after another, under a budget that pays for two of them; the others are refused."""
    store = platform.store

    def context(tenant: str, correlation: UUID) -> CommandContext:
        at = clock.ctx().at
        return CommandContext(
            at=at, tenant_id=tenant, actor="agent-worker", correlation_id=correlation, causation_id=correlation
        )

    runner = AgentRunner(
        store=store, llm=ScriptedProvider(), prices=DEFAULT_PRICES, context=context, budgets=TenantBudgets(store)
    )
    agent = await agents.register_agent(
        store, clock.ctx(), agents.RegisterAgent(name="w", provider="scripted", model="s", max_tokens=100)
    )
    # Each run may use 108 tokens and uses 7 (the scripted reply): after two runs, 14 + 108 no longer fit in 118.
    await set_budget(store, clock.ctx("admin"), SetBudget(tokens_per_day=118))
    runs = []
    for _ in range(4):
        run = await agents.request_agent_run(
            store, clock.ctx(), agents.RequestAgentRun(agent_id=agent.id, prompt="hello there")
        )
        runs.append(run.id)
    for run_id in runs:
        await runner.execute(run_id)
    return runs


async def test_budget_use_and_refusals_are_projected_once_and_rebuilt_alike(platform: Platform) -> None:
    clock = Clock(tenant_id="acme")
    await spend(platform, clock)
    for name in NAMES:
        await platform.projectors[name].catch_up()
    async with platform.pool.acquire() as conn:
        budget = await get_budget(conn, "acme", date(2026, 1, 1))
        statuses = await conn.fetch("SELECT status, refused_until FROM executions ORDER BY requested_at")
    assert budget is not None
    assert budget["tokens_per_day"] == 118
    assert (budget["day"]["runs"], budget["day"]["reserved_tokens"]) == (2, 0)
    assert budget["month"]["spent_tokens"] == budget["day"]["spent_tokens"] > 0
    assert [row["status"] for row in statuses] == ["succeeded", "succeeded", "refused", "refused"]
    assert {row["refused_until"].isoformat() for row in statuses[2:]} == {"2026-01-02T00:00:00+00:00"}

    once = await checksums(platform, NAMES)
    envelopes = await envelopes_of(platform, after=0)
    for name in NAMES:
        await platform.projectors[name].handle(envelopes)
    assert await checksums(platform, NAMES) == once
    await rebuild(platform, NAMES)
    assert await checksums(platform, NAMES) == once
