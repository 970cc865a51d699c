"""Read models built by catch-up, by the live path, twice, and rebuilt: always the same rows."""

from __future__ import annotations

import hashlib

import msgspec
import pytest

from domain.codec import decode_event
from domain.workflows.instance import WorkflowInstance
from ops.bootstrap import Platform, running_workers
from projections.audit_events import GENESIS
from tests.projections.conftest import checksums, rebuild
from tests.projections.envelopes import envelopes_of
from tests.workload import Workload

pytestmark = pytest.mark.integration


async def run_workload(platform: Platform, scenarios: int, seed: int = 1) -> Workload:
    workload = Workload(platform.store, seed=seed)
    for _ in range(scenarios):
        await workload.scenario()
    return workload


async def test_live_projections_equal_a_fresh_rebuild(platform: Platform) -> None:
    async with running_workers(platform):
        workload = await run_workload(platform, 25)
        assert await platform.wait_for(workload.last_position, timeout=30)
    live = await checksums(platform)
    assert live["executions"][0] == 25
    assert live["workflow_instances"][0] == 25
    await rebuild(platform)
    assert await checksums(platform) == live


async def test_read_models_hold_what_the_aggregates_say(platform: Platform) -> None:
    workload = await run_workload(platform, 10, seed=7)
    for projector in platform.projectors.values():
        await projector.catch_up()
    async with platform.pool.acquire() as conn:
        statuses = await conn.fetch("SELECT instance_id, status FROM workflow_instances")
        for row in statuses:
            instance = await platform.store.get(WorkflowInstance, row["instance_id"])
            assert instance.status == row["status"]
        compensated = await conn.fetchval("SELECT count(*) FROM saga_compensations WHERE status = 'compensated'")
        planned = await conn.fetchval("SELECT count(*) FROM saga_compensations")
        assert compensated == planned
        total = await conn.fetchval("SELECT sum(runs) FROM token_usage")
        succeeded = await conn.fetchval("SELECT count(*) FROM executions WHERE status = 'succeeded'")
        assert total == succeeded
    assert workload.commands > 100


async def test_a_batch_delivered_twice_is_applied_once(platform: Platform) -> None:
    workload = await run_workload(platform, 5)
    envelopes = await envelopes_of(platform, after=0)
    for projector in platform.projectors.values():
        await projector.handle(envelopes)
    once = await checksums(platform)
    for projector in platform.projectors.values():
        await projector.handle(envelopes)
        await projector.handle(envelopes[len(envelopes) // 2 :])
    assert await checksums(platform) == once
    assert workload.last_position == envelopes[-1].position


async def test_a_gap_in_deliveries_is_filled_from_the_store(platform: Platform) -> None:
    await run_workload(platform, 3)
    envelopes = await envelopes_of(platform, after=0)
    executions = platform.projectors["executions"]
    agent_events = [e for e in envelopes if e.context == "agents"]
    await executions.handle(agent_events[:3])
    await executions.handle(agent_events[6:])  # three deliveries lost on the way
    gapped = await checksums(platform, ["executions"])
    await rebuild(platform, ["executions"])
    assert await checksums(platform, ["executions"]) == gapped
    assert (await executions.status()).position == envelopes[-1].position  # caught up to the head


async def test_the_audit_trail_is_a_verifiable_hash_chain_of_every_event(platform: Platform) -> None:
    await run_workload(platform, 8)
    await platform.projectors["audit_events"].catch_up()
    async with platform.pool.acquire() as conn:
        rows = await conn.fetch("SELECT position, canonical, prev_hash, hash FROM audit_events ORDER BY position")
        head = await conn.fetchval("SELECT chain_head FROM projection_positions WHERE name = 'audit_events'")
        partitions = await conn.fetchval("SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_events'::regclass")
    assert [row["position"] for row in rows] == [e.position for e in await envelopes_of(platform, after=0)]
    previous = GENESIS
    for row in rows:
        assert bytes(row["prev_hash"]) == previous
        previous = hashlib.sha256(previous + bytes(row["canonical"])).digest()
        assert bytes(row["hash"]) == previous
    assert bytes(head) == previous
    assert partitions >= 2  # the workload spans months: one partition each
    record = msgspec.json.decode(bytes(rows[0]["canonical"]))
    event = decode_event(record["topic"], msgspec.json.encode(record["data"]))
    assert event.originator_version == record["stream_version"]


async def test_writes_sent_in_waves_give_the_rows_that_one_by_one_writes_give(platform: Platform) -> None:
    await run_workload(platform, 12, seed=4)
    names = [n for n in platform.projectors if n != "audit_events"]
    for name in names:
        await platform.projectors[name].catch_up()
    in_waves = await checksums(platform, names)
    async with platform.pool.acquire() as conn:
        batch = await platform.reader.read(conn, 0, 1_000_000)
        for name in names:
            projection = platform.projectors[name].projection
            await conn.execute(f"TRUNCATE {', '.join(projection.tables)}")
            for position, event in batch.events:
                for write in projection.writes(position, event):
                    await conn.execute(write.sql, *write.args)
    assert await checksums(platform, names) == in_waves
