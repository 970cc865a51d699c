"""50 concurrent writers on one aggregate, through two stores (two connection pools, as two processes would)."""

from __future__ import annotations

import asyncio

import pytest

from adapters.event_store.store import EventSourcedStore
from commands.agents import ReconfigureAgent, RegisterAgent, reconfigure_agent, register_agent
from commands.errors import ConcurrencyError
from commands.results import CommandResult
from tests.conftest import postgres_store
from tests.strategies import Clock

pytestmark = pytest.mark.integration


async def test_fifty_concurrent_writers_on_one_aggregate_each_succeed_or_get_concurrency_error(
    database_url: str, pg_schema: str
) -> None:
    stores = [postgres_store(database_url, pg_schema), postgres_store(database_url, pg_schema)]
    try:
        clock = Clock()
        created = await register_agent(
            stores[0], clock.ctx(), RegisterAgent(name="hot", provider="scripted", model="m")
        )

        async def writer(index: int) -> CommandResult:
            store: EventSourcedStore = stores[index % 2]
            command = ReconfigureAgent(
                agent_id=created.id,
                provider="scripted",
                model=f"m{index}",
                system_prompt="",
                temperature=0.1,
                max_tokens=10,
            )
            return await reconfigure_agent(store, clock.ctx(), command)

        outcomes = await asyncio.gather(*(writer(i) for i in range(50)), return_exceptions=True)
        successes = [o for o in outcomes if isinstance(o, CommandResult)]
        conflicts = [o for o in outcomes if isinstance(o, ConcurrencyError)]
        assert len(successes) + len(conflicts) == 50, [o for o in outcomes if isinstance(o, BaseException)]
        assert successes, "at least the first writer must win"
        events = stores[0].events_of(created.id)
        assert len(events) == 1 + len(successes)
        assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
        assert sorted(s.version for s in successes) == list(range(2, len(events) + 1))
    finally:
        for store in stores:
            await store.close()
