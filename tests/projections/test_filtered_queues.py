"""Projection queues take only the events their projection handles; the relay's chains still show every gap."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from adapters.relay import Chains
from domain.envelope import Envelope
from ops.bootstrap import Platform, running_workers
from tests.projections.conftest import checksums, rebuild
from tests.projections.envelopes import envelopes_of
from tests.workload import Workload

pytestmark = pytest.mark.integration


async def run_workload(platform: Platform, scenarios: int, seed: int = 5) -> Workload:
    workload = Workload(platform.store, seed=seed)
    for _ in range(scenarios):
        await workload.scenario()
    return workload


def taken_by(platform: Platform, name: str, envelopes: list[Envelope]) -> list[Envelope]:
    handles = set(platform.projectors[name].projection.topics() or [])
    return [e for e in envelopes if e.topic in handles]


async def test_each_filter_chains_to_the_one_before_it_of_the_same_filter(platform: Platform) -> None:
    await run_workload(platform, 4)
    envelopes = await envelopes_of(platform, after=0)
    for name, projector in platform.projectors.items():
        if projector.projection.context is None:
            continue
        taken = taken_by(platform, name, envelopes)
        chain = [e.filter_previous[projector.projection.filter_id] for e in taken]
        positions = [e.position for e in taken]
        assert chain == [0, *positions][: len(taken)], name
    unhandled = [e for e in envelopes if e.topic not in set(platform.projectors["agents"].projection.topics() or [])]
    assert all(platform.projectors["agents"].projection.filter_id not in e.filter_previous for e in unhandled)


async def test_a_relay_that_starts_without_a_filters_chain_leaves_it_out_until_it_has_one(platform: Platform) -> None:
    await run_workload(platform, 3)
    async with platform.pool.acquire() as conn:
        batch = await platform.reader.read(conn, 0, 1_000_000)
    first, rest = batch.events[:20], batch.events[20:]
    chains = Chains(platform.filters(), first[-1].position, {"agents": 1})  # state of a relay that knew no filter
    made = [chains.envelope(recorded) for recorded in rest]
    executions = platform.projectors["executions"].projection.filter_id
    taken = taken_by(platform, "executions", made)
    assert executions not in taken[0].filter_previous
    assert [e.filter_previous[executions] for e in taken[1:]] == [e.position for e in taken[:-1]]


async def test_a_lost_event_of_the_filter_is_caught_up_and_a_skipped_one_of_another_is_not(
    platform: Platform,
) -> None:
    await run_workload(platform, 3)
    envelopes = await envelopes_of(platform, after=0)
    executions = platform.projectors["executions"]
    taken = taken_by(platform, "executions", envelopes)
    await executions.handle(taken[:4])
    await executions.handle(taken[5:6])  # taken[4] lost: the chain shows it, the store fills it in
    assert (await executions.status()).position == envelopes[-1].position
    gapped = await checksums(platform, ["executions"])
    await rebuild(platform, ["executions"])
    assert await checksums(platform, ["executions"]) == gapped

    # Between two events it takes, its queue never sees the others: no gap, so nothing read from the store.
    token_usage = platform.projectors["token_usage"]
    async with platform.pool.acquire() as conn:
        await conn.execute("UPDATE projection_positions SET position = 0 WHERE name = 'token_usage'")
        await conn.execute("TRUNCATE token_usage")
    mine = taken_by(platform, "token_usage", envelopes)
    await token_usage.handle(mine[:2])
    async with platform.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT position FROM projection_positions WHERE name = 'token_usage'")
    assert stored == mine[1].position


async def test_an_envelope_without_the_chain_is_checked_against_the_store(platform: Platform) -> None:
    await run_workload(platform, 3)
    envelopes = await envelopes_of(platform, after=0)
    executions = platform.projectors["executions"]
    fid = executions.projection.filter_id
    taken = taken_by(platform, "executions", envelopes)
    unchained = [msgspec.structs.replace(e, filter_previous={}) for e in taken]

    await executions.handle(unchained[:3])
    async with platform.pool.acquire() as conn:
        assert await conn.fetchval("SELECT position FROM projection_positions WHERE name = 'executions'") == (
            taken[2].position
        )
    await executions.handle(unchained[4:5])  # unchained[3] lost: the store has it
    assert (await executions.status()).position == envelopes[-1].position
    assert all(fid in e.filter_previous for e in taken)


async def test_an_event_it_does_not_handle_neither_moves_it_nor_hides_a_gap(platform: Platform) -> None:
    await run_workload(platform, 3)
    envelopes = await envelopes_of(platform, after=0)
    agents = platform.projectors["agents"]
    registered = taken_by(platform, "agents", envelopes)
    assert len(registered) == 3
    [between] = [e for e in envelopes if e.context == "agents" and e.topic.endswith(":AgentRunRequested")][1:2]
    assert registered[1].position < between.position < registered[2].position
    await agents.handle(registered[:2])
    await agents.handle([between])  # through a binding an older version left
    async with platform.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT position FROM projection_positions WHERE name = 'agents'")
    assert stored == registered[1].position


async def test_chains_a_relay_of_an_older_version_left_behind_are_not_trusted(platform: Platform) -> None:
    await run_workload(platform, 3)
    envelopes = await envelopes_of(platform, after=0)
    executions = platform.projectors["executions"]
    fid = executions.projection.filter_id
    taken = taken_by(platform, "executions", envelopes)
    await executions.handle(taken[:3])
    # Saved by a new relay at taken[2], then carried on by an old one that kept the filter keys as they were.
    stale = {"agents": envelopes[-1].position, f"filter:{fid}": taken[2].position, "filters_at": taken[2].position}
    async with platform.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO relay_positions (name, position, previous) VALUES ('relay', $1, $2)",
            envelopes[-1].position,
            stale,
        )
    status = await executions.status()
    assert status.position == taken[2].position  # not settled up to the relay: events of its own are pending
    assert status.pending == len(taken) - 3
    assert fid in Chains(platform.filters(), envelopes[-1].position, stale).unknown()


async def test_a_relay_without_a_filters_chain_starts_it_at_its_position_and_projectors_catch_up_once(
    platform: Platform,
) -> None:
    workload = await run_workload(platform, 3)
    start = workload.last_position
    async with platform.pool.acquire() as conn:  # a relay of the version before filters, at the head
        await conn.execute("INSERT INTO relay_positions (name, position, previous) VALUES ('relay', $1, '{}')", start)
    async with running_workers(platform, projections=[]):
        added = await run_workload(platform, 1, seed=9)
        assert await _relayed(platform, added.last_position)
    envelopes = await envelopes_of(platform, after=0)
    async with platform.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT position, previous FROM relay_positions")
    assert row is not None
    position, previous = row["position"], row["previous"]
    assert previous["filters_at"] == position == envelopes[-1].position
    for name, projector in platform.projectors.items():
        if projector.projection.context is not None:
            taken = [e.position for e in taken_by(platform, name, envelopes) if e.position > start]
            assert previous[f"filter:{projector.projection.filter_id}"] == (taken[-1] if taken else start), name

    # The relay's first envelope of a filter names its start: a projector behind it catches up, and is whole.
    executions = platform.projectors["executions"]
    chains = Chains(platform.filters(), start)
    chains.know(executions.projection.filter_id, start)
    async with platform.pool.acquire() as conn:
        later = (await platform.reader.read(conn, start, 1_000)).events
    first = next(e for e in (chains.envelope(r) for r in later) if e.topic in set(executions.projection.topics() or []))
    assert first.filter_previous[executions.projection.filter_id] == start
    await executions.handle([first])
    assert (await executions.status()).position == envelopes[-1].position
    caught = await checksums(platform, ["executions"])
    await rebuild(platform, ["executions"])
    assert await checksums(platform, ["executions"]) == caught


async def _relayed(platform: Platform, position: int) -> bool:
    for _ in range(600):
        async with platform.pool.acquire() as conn:
            if (await conn.fetchval("SELECT position FROM relay_positions") or 0) >= position:
                return True
        await asyncio.sleep(0.05)
    return False


async def test_waiting_and_status_look_past_a_projection_whose_events_are_rare(platform: Platform) -> None:
    async with running_workers(platform):
        workload = await run_workload(platform, 6)
        assert await platform.wait_for(workload.last_position, timeout=30)
    agents = platform.projectors["agents"]
    async with platform.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT position FROM projection_positions WHERE name = 'agents'")
        relayed = await conn.fetchval("SELECT position FROM relay_positions")
    assert stored < relayed == workload.last_position  # its last event came long before the head
    status = await agents.status()
    assert (status.position, status.pending) == (relayed, 0)
