"""The event store's contract, run against the in-memory recorder and against PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg import sql

from adapters.event_store.application import StoreApplication, postgres_env
from adapters.event_store.store import EventSourcedStore
from commands.errors import AggregateNotFound, ConcurrencyError
from domain.agents.agent import Agent
from domain.events import Snapshot
from domain.workflows.instance import WorkflowInstance
from tests.strategies import Clock

CIPHER_KEY = base64.b64encode(bytes(range(32))).decode()


def new_agent(clock: Clock, agent_id: UUID | None = None) -> tuple[Agent, list[object]]:
    agent, event = Agent.register(
        clock.ctx(),
        agent_id or uuid4(),
        name="writer",
        provider="scripted",
        model="m",
        system_prompt="",
        temperature=0.0,
        max_tokens=10,
    )
    return agent, [event]


def reconfigure(agent: Agent, clock: Clock, model: str) -> list[object]:
    return list(
        agent.reconfigure(clock.ctx(), provider="scripted", model=model, system_prompt="", temperature=0, max_tokens=9)
    )


async def test_a_saved_aggregate_loads_equal(store: EventSourcedStore) -> None:
    clock = Clock()
    agent, events = new_agent(clock)
    position = await store.save(agent, events)  # type: ignore[arg-type]
    assert position >= 1
    assert await store.get(Agent, agent.id) == agent


async def test_an_aggregate_loads_as_of_any_version(store: EventSourcedStore) -> None:
    clock = Clock()
    agent, events = new_agent(clock)
    await store.save(agent, events)  # type: ignore[arg-type]
    for model in ("m2", "m3", "m4"):
        await store.save(agent, reconfigure(agent, clock, model))  # type: ignore[arg-type]
    assert (await store.get(Agent, agent.id, version=2)).model == "m2"
    assert (await store.get(Agent, agent.id)).model == "m4"


async def test_a_missing_or_other_kind_of_stream_is_not_found(store: EventSourcedStore) -> None:
    with pytest.raises(AggregateNotFound):
        await store.get(Agent, uuid4())
    agent, events = new_agent(Clock())
    await store.save(agent, events)  # type: ignore[arg-type]
    with pytest.raises(AggregateNotFound):
        await store.get(WorkflowInstance, agent.id)


async def test_a_stale_save_fails_with_concurrency_error_and_writes_nothing(store: EventSourcedStore) -> None:
    clock = Clock()
    agent, events = new_agent(clock)
    await store.save(agent, events)  # type: ignore[arg-type]
    first, second = await store.get(Agent, agent.id), await store.get(Agent, agent.id)
    await store.save(first, reconfigure(first, clock, "winner"))  # type: ignore[arg-type]
    with pytest.raises(ConcurrencyError, match="already has version 2"):
        await store.save(second, reconfigure(second, clock, "loser"))  # type: ignore[arg-type]
    assert (await store.get(Agent, agent.id)).model == "winner"
    assert len(store.events_of(agent.id)) == 2


async def test_concurrent_saves_commit_together_and_a_conflict_fails_only_itself(store: EventSourcedStore) -> None:
    clock = Clock()
    agents = [new_agent(clock) for _ in range(20)]
    duplicate, duplicate_events = new_agent(clock, agents[0][0].id)
    outcomes = await asyncio.gather(
        *(store.save(agent, events) for agent, events in agents),  # type: ignore[arg-type]
        store.save(duplicate, duplicate_events),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert len(errors) == 1
    assert isinstance(errors[0], ConcurrencyError)
    positions = [outcome for outcome in outcomes if isinstance(outcome, int)]
    assert len(set(positions)) == 20
    for agent, _ in agents:
        assert await store.get(Agent, agent.id) == agent


async def test_the_position_of_an_event_is_the_one_its_save_returned(store: EventSourcedStore) -> None:
    clock = Clock()
    agent, events = new_agent(clock)
    first = await store.save(agent, events)  # type: ignore[arg-type]
    second = await store.save(agent, reconfigure(agent, clock, "x"))  # type: ignore[arg-type]
    assert second > first
    assert await store.position_of(agent.id, 1) == first
    assert await store.position_of(agent.id, 2) == second
    with pytest.raises(AggregateNotFound):
        await store.position_of(agent.id, 3)


async def test_a_long_stream_loads_from_its_snapshot_to_the_same_state(store: EventSourcedStore) -> None:
    clock = Clock()
    agent, events = new_agent(clock)
    await store.save(agent, events)  # type: ignore[arg-type]
    for index in range(10):
        await store.save(agent, reconfigure(agent, clock, f"m{index}"))  # type: ignore[arg-type]
    assert store.app.snapshots is not None
    snapshots = list(store.app.snapshots.get(agent.id))
    assert [snapshot.originator_version for snapshot in snapshots] == [3, 6, 9]
    assert await store.get(Agent, agent.id) == agent
    assert await store.get(Agent, agent.id, version=5) == Agent.project(store.events_of(agent.id)[:5])


async def test_an_empty_save_is_a_programming_error(store: EventSourcedStore) -> None:
    agent, _ = new_agent(Clock())
    with pytest.raises(ValueError, match="at least one event"):
        await store.save(agent, [])


async def test_a_snapshot_that_no_longer_fits_the_aggregate_is_ignored(store: EventSourcedStore) -> None:
    clock = Clock()
    agent, events = new_agent(clock)
    await store.save(agent, events)  # type: ignore[arg-type]
    for index in range(4):
        await store.save(agent, reconfigure(agent, clock, f"m{index}"))  # type: ignore[arg-type]
    assert store.app.snapshots is not None
    [old] = list(store.app.snapshots.get(agent.id))
    assert isinstance(old, Snapshot)
    outdated = Snapshot(
        originator_id=agent.id,
        originator_version=old.originator_version + 1,
        timestamp=old.timestamp,
        topic=old.topic,
        state={**old.state, "max_tokens": "no longer an int"},
    )
    store.app.snapshots.put([outdated])
    assert await store.get(Agent, agent.id) == agent


@pytest.mark.integration
async def test_with_a_cipher_key_payloads_are_unreadable_in_the_database(database_url: str, pg_schema: str) -> None:
    app = StoreApplication(env=postgres_env(database_url, schema=pg_schema, cipher_key=CIPHER_KEY))
    store = EventSourcedStore(app)
    try:
        clock = Clock()
        agent, events = new_agent(clock)
        await store.save(agent, events)  # type: ignore[arg-type]
        assert await store.get(Agent, agent.id) == agent
    finally:
        await store.close()
    with psycopg.connect(database_url) as conn:
        [(state,)] = conn.execute(
            sql.SQL("SELECT state FROM {}.aiwp_events WHERE originator_id = %s").format(sql.Identifier(pg_schema)),
            (agent.id,),
        ).fetchall()
    assert b"writer" not in state
    assert b"scripted" not in state
