"""The event pipeline: relay throughput, projector catch-up, and lag from commit to read model.

    RESULT relay_publish                 msgs/s, the relay publishing a stored log to RabbitMQ
    RESULT reference_aio_pika_100_inflight msgs/s, raw aio-pika confirmed publishing, 100 in flight
    RATIO  relay_publish                 relay / reference (target >= 0.8)
    RESULT catchup_<projection>          events/s applied by a projector reading the store
    RATIO  catchup_<projection>          rate / 20,000 events/s (target >= 1)
    RESULT e2e_lag_p50 / e2e_lag_p99     ms from command commit to read-model row, at 500 commands/s
    RESULT reference_broker_roundtrip_p99 ms for a bare publish -> consume on the same broker
    RATIO  e2e_lag_p99                   p99 / 100 ms (target <= 1)

Run: `make bench` (or `python -m tests.bench.pipeline`). Uses the machine's PostgreSQL and RabbitMQ.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import aio_pika

from adapters.bus.rabbitmq import to_message
from adapters.relay import envelope_of
from commands.agents import RegisterAgent, register_agent
from domain.agents.agent import Agent
from domain.aggregate import CommandContext
from domain.envelope import Envelope, routing_key
from ops.bootstrap import Platform, running_workers
from tests.bench.common import bench_platform, percentile, scratch_schema, scratch_vhost
from tests.workload import Workload

RELAY_EVENTS = 20_000
CATCHUP_EVENTS = 30_000
LAG_RATE = 500  # commands per second
LAG_SECONDS = 10


def context() -> CommandContext:
    correlation = uuid.uuid4()
    return CommandContext(
        at=datetime.now(UTC), tenant_id="bench", actor="bench", correlation_id=correlation, causation_id=correlation
    )


def agents(count: int) -> list[object]:
    return [
        Agent.register(
            context(),
            uuid.uuid4(),
            name="a",
            provider="scripted",
            model="m",
            system_prompt="",
            temperature=0,
            max_tokens=9,
        )[1]
        for _ in range(count)
    ]


async def fill(platform: Platform, count: int) -> None:
    events = agents(count)
    for start in range(0, count, 1000):
        await asyncio.to_thread(platform.store.app.events.put, events[start : start + 1000])  # type: ignore[arg-type]


async def relay_rate(platform: Platform) -> float:
    await fill(platform, RELAY_EVENTS)
    relay = platform.relay()
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(relay.run(stop))
    while relay.published < RELAY_EVENTS:
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    return RELAY_EVENTS / elapsed


async def reference_rate(platform: Platform, amqp_url: str) -> float:
    """Raw aio-pika: the same messages, to the same exchange and queues, 100 unconfirmed at a time."""
    async with platform.pool.acquire() as conn:
        batch = await platform.reader.read(conn, 0, RELAY_EVENTS)
    envelopes = [envelope_of(recorded, 0, 0) for recorded in batch.events]
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("agent.events")
        window = asyncio.Semaphore(100)

        async def one(message: aio_pika.Message, key: str) -> None:
            try:
                await exchange.publish(message, key)
            finally:
                window.release()

        started = time.perf_counter()
        tasks = []
        for envelope in envelopes:
            await window.acquire()
            tasks.append(asyncio.create_task(one(to_message(envelope), routing_key(envelope))))
        await asyncio.gather(*tasks)
        return len(envelopes) / (time.perf_counter() - started)
    finally:
        await connection.close()


async def catchup_rates(platform: Platform) -> dict[str, float]:
    workload = Workload(platform.store, seed=1)
    events = 0
    while events < CATCHUP_EVENTS:
        await asyncio.gather(*(workload.scenario() for _ in range(8)))
        async with platform.pool.acquire() as conn:
            events = await platform.reader.head(conn)
    rates = {}
    for name in ("executions", "workflow_instances", "audit_events"):
        projector = platform.projectors[name]
        async with platform.pool.acquire() as conn:
            handled = await platform.reader.count_after(conn, 0, projector.projection.topics())
        started = time.perf_counter()
        await projector.catch_up()
        rates[name] = handled / (time.perf_counter() - started)
    return rates


async def lag(platform: Platform) -> tuple[list[float], list[float]]:
    committed: dict[int, float] = {}
    applied: dict[int, float] = {}
    projector = platform.projectors["agents"]
    original = projector.handle

    async def timed(envelopes: Sequence[Envelope]) -> None:
        await original(envelopes)
        now = time.perf_counter()
        for envelope in envelopes:
            applied.setdefault(envelope.position, now)

    projector.handle = timed  # type: ignore[method-assign]  # measure when each batch commits
    command = RegisterAgent(name="lag", provider="scripted", model="m")
    async with running_workers(platform, projections=["agents"]):
        await projector.wait_for(0, 5)

        async def one() -> None:
            result = await register_agent(platform.store, context(), command)
            committed[result.position] = time.perf_counter()

        tasks = []
        started = time.perf_counter()
        for index in range(LAG_RATE * LAG_SECONDS):
            await asyncio.sleep(max(0.0, started + index / LAG_RATE - time.perf_counter()))
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
        await projector.wait_for(max(committed), 30)
    lags = [(applied[p] - t) * 1000 for p, t in committed.items() if p in applied]
    return lags, await broker_roundtrips(platform)


async def broker_roundtrips(platform: Platform) -> list[float]:
    settings = platform.settings
    assert settings.amqp_url
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(exclusive=True)
        times = []
        async with queue.iterator() as messages:
            for _ in range(500):
                sent = time.perf_counter()
                await channel.default_exchange.publish(aio_pika.Message(b"x" * 600), routing_key=queue.name)
                message = await anext(messages)
                await message.ack()
                times.append((time.perf_counter() - sent) * 1000)
                await asyncio.sleep(1 / LAG_RATE)
        return times
    finally:
        await connection.close()


async def main() -> None:
    with scratch_schema() as schema, scratch_vhost() as amqp_url:
        async with bench_platform(schema, amqp_url) as platform:
            relay = await relay_rate(platform)
            reference = await reference_rate(platform, amqp_url)
    print(f"RESULT relay_publish {relay:.0f} msgs/s")
    print(f"RESULT reference_aio_pika_100_inflight {reference:.0f} msgs/s")
    print(f"RATIO relay_publish {relay / reference:.2f}")

    with scratch_schema() as schema:
        async with bench_platform(schema, None) as platform:
            rates = await catchup_rates(platform)
    for name, rate in rates.items():
        print(f"RESULT catchup_{name} {rate:.0f} events/s")
        print(f"RATIO catchup_{name} {rate / 20_000:.2f}")

    with scratch_schema() as schema, scratch_vhost() as amqp_url:
        async with bench_platform(schema, amqp_url) as platform:
            lags, roundtrips = await lag(platform)
    p50, p99 = percentile(lags, 0.5), percentile(lags, 0.99)
    print(f"RESULT e2e_lag_p50 {p50:.1f} ms")
    print(f"RESULT e2e_lag_p99 {p99:.1f} ms")
    print(f"RESULT e2e_lag_samples {len(lags)} commands")
    print(f"RESULT reference_broker_roundtrip_p99 {percentile(roundtrips, 0.99):.1f} ms")
    print(f"RATIO e2e_lag_p99 {p99 / 100:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
