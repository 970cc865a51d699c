"""Projectors killed mid-batch, and a poison message on RabbitMQ: read models stay equal to a rebuild."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import aio_pika
import msgspec
import pytest

from adapters.bus.rabbitmq import to_message
from domain.envelope import routing_key
from ops.bootstrap import Platform, running_workers
from tests.e2e.conftest import load
from tests.e2e.processes import kill_hard, start_worker, stop, worker_env
from tests.projections.conftest import checksums, rebuild
from tests.projections.envelopes import envelopes_of
from tests.workload import Workload

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
KILLED = ["executions", "tasks", "token_usage"]


async def test_projectors_killed_mid_batch_five_times_still_equal_a_rebuild(
    platform: Platform, database_url: str, pg_schema: str, amqp_url: str, tmp_path: Path
) -> None:
    env = worker_env(database_url, pg_schema, amqp_url) | {"AIWP_PROJECTOR_BATCH": "50"}
    log = tmp_path / "projector.log"
    rng = random.Random(3)
    projector = start_worker(["worker", "projector", *KILLED], env, log)
    workload = Workload(platform.store, seed=9)
    async with running_workers(platform, relay=True, projections=[]):
        loading = asyncio.create_task(load(workload, 5_000, concurrency=4))
        for threshold in sorted(rng.sample(range(500, 4_800), 5)):
            while workload.commands < threshold and not loading.done():
                await asyncio.sleep(0.01)
            kill_hard(projector)
            projector = start_worker(["worker", "projector", *KILLED], env, log)
        await loading
        assert await platform.wait_for(workload.last_position, timeout=180, names=KILLED), log.read_text()[-3000:]
    assert stop(projector) == 0
    live = await checksums(platform, KILLED)
    await rebuild(platform, KILLED)
    assert await checksums(platform, KILLED) == live


async def test_a_poison_message_on_rabbitmq_is_dead_lettered_and_stalls_the_projector(
    platform: Platform, amqp_url: str
) -> None:
    workload = Workload(platform.store)
    async with running_workers(platform, relay=True, projections=["executions"]):
        await workload.scenario()
        assert await platform.wait_for(workload.last_position, names=["executions"])
        [last] = [e for e in await envelopes_of(platform, after=0) if e.context == "agents"][-1:]
        poison = msgspec.structs.replace(
            last,
            position=last.position + 1_000_000,
            previous_position=last.position,
            context_previous_position=last.position,
            data=msgspec.Raw(b"[]"),
        )
        connection = await aio_pika.connect(amqp_url)
        try:
            channel = await connection.channel()
            exchange = await channel.get_exchange("agent.events")
            await exchange.publish(to_message(poison), routing_key(poison))
            dlq = await channel.declare_queue("projection.executions.dlq", passive=True)
            async with dlq.iterator() as messages:
                dead = await asyncio.wait_for(anext(messages), timeout=20)
                await dead.ack()
        finally:
            await connection.close()
    assert dead.message_id == str(poison.event_id)
    status = await platform.projectors["executions"].status()
    assert status.status == "stalled"
    assert str(poison.position) in status.error
    assert last.position <= status.position < poison.position  # nothing skipped, nothing applied past the poison
