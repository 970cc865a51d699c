"""The identity map: one load per unit of work, and a stale copy cannot overwrite a newer state."""

from __future__ import annotations

import pytest

from adapters.event_store.store import EventSourcedStore
from commands import agents
from commands.errors import ConcurrencyError
from commands.unit_of_work import IdentityMap
from domain.agents.agent import Agent
from tests.strategies import Clock


async def register(store: EventSourcedStore, clock: Clock) -> Agent:
    made = await agents.register_agent(
        store, clock.ctx(), agents.RegisterAgent(name="w", provider="scripted", model="m")
    )
    return await store.get(Agent, made.id)


async def test_an_aggregate_is_loaded_once_per_unit_of_work(store: EventSourcedStore) -> None:
    clock = Clock()
    agent = await register(store, clock)
    unit = IdentityMap(store)
    first = await unit.get(Agent, agent.id)
    assert await unit.get(Agent, agent.id) is first
    await unit.save(first, first.archive(clock.ctx(), reason="done"))
    assert await unit.get(Agent, agent.id) is first
    assert (await store.get(Agent, agent.id)).archived


async def test_a_copy_made_stale_by_another_writer_is_refused_then_forgotten(store: EventSourcedStore) -> None:
    clock = Clock()
    agent = await register(store, clock)
    unit = IdentityMap(store)
    copy = await unit.get(Agent, agent.id)
    change = agents.ReconfigureAgent(
        agent_id=agent.id, provider="scripted", model="m2", system_prompt="", temperature=0.1, max_tokens=9
    )
    await agents.reconfigure_agent(store, clock.ctx(), change)  # another writer, meanwhile
    with pytest.raises(ConcurrencyError):
        await unit.save(copy, copy.archive(clock.ctx(), reason="stale"))
    reloaded = await unit.get(Agent, agent.id)
    assert reloaded is not copy
    assert (reloaded.model, reloaded.archived) == ("m2", False)
