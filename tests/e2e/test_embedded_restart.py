"""The embedded platform's in-process bus keeps work items in memory: a restart hands out again what it lost."""

from __future__ import annotations

import asyncio

import pytest

from commands import agents
from domain.agents.agent_run import AgentRun
from ops.bootstrap import open_platform, running_workers
from ops.settings import Settings
from tests.strategies import Clock

pytestmark = pytest.mark.integration


async def test_a_run_requested_before_a_restart_is_run_after_it(database_url: str, pg_schema: str) -> None:
    settings = Settings(database_url=database_url, database_schema=pg_schema)
    clock = Clock()
    async with open_platform(settings) as platform:
        agent = await agents.register_agent(
            platform.store, clock.ctx(), agents.RegisterAgent(name="a", provider="scripted", model="m")
        )
        # The relay publishes the request, but no agent worker is there to keep it: it is gone with the process.
        async with running_workers(platform, projections=[]):
            requested = await agents.request_agent_run(
                platform.store, clock.ctx(), agents.RequestAgentRun(agent_id=agent.id, prompt="hello")
            )
            for _ in range(200):
                async with platform.pool.acquire() as conn:
                    if (await conn.fetchval("SELECT max(position) FROM relay_positions") or 0) >= requested.position:
                        break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the relay did not publish the request")
    async with open_platform(settings) as platform, running_workers(platform, projections=[], agents=True):
        for _ in range(200):
            if (await platform.store.get(AgentRun, requested.id)).status == "succeeded":
                break
            await asyncio.sleep(0.05)
        run = await platform.store.get(AgentRun, requested.id)
        assert run.status == "succeeded"
        assert len(run.attempts) == 1
