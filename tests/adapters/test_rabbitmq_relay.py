"""The relay and the projectors over the machine's RabbitMQ: the seed's topology, confirms, dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import msgspec
import pytest

from adapters.bus.rabbitmq import RabbitBus
from adapters.projector import binding_of
from domain.envelope import Envelope
from ops.bootstrap import Platform, open_platform, running_workers
from ops.settings import Settings
from tests.projections.conftest import checksums, rebuild
from tests.projections.envelopes import envelopes_of
from tests.workload import Workload

pytestmark = pytest.mark.integration


@pytest.fixture
async def platform(database_url: str, pg_schema: str, amqp_url: str) -> AsyncIterator[Platform]:
    settings = Settings(
        database_url=database_url, database_schema=pg_schema, amqp_url=amqp_url, db_pool_size=6, read_pool_size=8
    )
    async with open_platform(settings) as made:
        yield made


async def test_events_flow_through_rabbitmq_into_read_models_equal_to_a_rebuild(
    platform: Platform, amqp_url: str
) -> None:
    assert isinstance(platform.bus, RabbitBus)
    workload = Workload(platform.store, seed=3)
    async with running_workers(platform):
        for _ in range(15):
            await workload.scenario()
        assert await platform.wait_for(workload.last_position, timeout=30)
    live = await checksums(platform)
    await rebuild(platform)
    assert await checksums(platform) == live

    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        # Every context exchange feeds the fanout; each projector has its queue and a dead-letter queue.
        for name in platform.projectors:
            queue = await channel.declare_queue(f"projection.{name}", passive=True)
            assert queue.declaration_result.message_count == 0
            await channel.declare_queue(f"projection.{name}.dlq", passive=True)
        await channel.declare_exchange("system.events", passive=True)
    finally:
        await connection.close()


async def test_a_published_message_carries_the_envelope_and_its_headers(platform: Platform, amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        probe = await channel.declare_queue(exclusive=True)
        await probe.bind("agent.events", routing_key="agent.AgentRun.#")
        workload = Workload(platform.store)
        async with running_workers(platform, projections=[]):
            await workload.scenario()
            message = await _first(probe)
        envelope = msgspec.json.decode(message.body, type=Envelope)
        assert message.message_id == str(envelope.event_id)
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.content_type == "application/json"
        assert message.routing_key == f"agent.AgentRun.{envelope.type}"
        assert message.headers["tenant_id"] == envelope.tenant_id
        assert "traceparent" in message.headers
        assert envelope.type == "AgentRunRequested"
    finally:
        await connection.close()


async def _first(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    async with queue.iterator() as messages:
        message = await asyncio.wait_for(anext(messages), timeout=10)
        await message.ack()
        return message


async def test_a_projection_queue_takes_only_the_events_its_projection_handles(
    platform: Platform, amqp_url: str
) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        # `projection.agents` as an earlier version bound it: to every event of its context.
        old = await channel.declare_queue("projection.agents", passive=True)
        await old.bind("agent.events", routing_key="#")
        await platform.bus.start([binding_of(p.projection) for p in platform.projectors.values()])
        workload = Workload(platform.store, seed=4)
        async with running_workers(platform, projections=[]):
            for _ in range(3):
                await workload.scenario()
            await _relayed(platform, workload.last_position)
        envelopes = await envelopes_of(platform, after=0)
        for name in ("agents", "executions", "workflow_instances"):
            handles = set(platform.projectors[name].projection.topics() or [])
            expected = sum(1 for e in envelopes if e.topic in handles)
            queue = await channel.declare_queue(f"projection.{name}", passive=True)
            assert queue.declaration_result.message_count == expected, name
            assert 0 < expected < len(envelopes)
        audit = await channel.declare_queue("projection.audit_events", passive=True)
        assert audit.declaration_result.message_count == len(envelopes)  # through the fanout: every event
    finally:
        await connection.close()


async def _relayed(platform: Platform, position: int) -> None:
    async with asyncio.timeout(30):
        while True:
            async with platform.pool.acquire() as conn:
                if (await conn.fetchval("SELECT max(position) FROM relay_positions") or 0) >= position:
                    return
            await asyncio.sleep(0.05)
