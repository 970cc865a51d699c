"""The RabbitMQ bus (aio-pika): the seed's topology, confirmed pipelined publishing, batched consumers.

Topology, declared idempotently by every process at start: a topic exchange per context
(`agent.events`, `workflow.events`, ...) bound into the `system.events` fanout; a `dlx` direct
exchange; per consumer a durable queue with a single active consumer and a dead-letter queue, bound
to the events its projection handles (ADR 0011).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import aio_pika
import msgspec
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection

from adapters.bus.consumer_loop import Delivery, deliver
from adapters.bus.port import (
    DEAD_LETTER_EXCHANGE,
    SYSTEM_EXCHANGE,
    BatchHandler,
    Binding,
    PoisonHandler,
    WorkHandler,
    WorkQueue,
)
from domain.catalog import EXCHANGE_PREFIX, exchange_of
from domain.envelope import Envelope, routing_key

log = logging.getLogger(__name__)
CONTEXTS = tuple(EXCHANGE_PREFIX)
_decoder = msgspec.json.Decoder(Envelope)
FAILURES_HEADER = "x-aiwp-failures"  # how many times a work item failed unexpectedly (it waits longer each time)


def to_message(envelope: Envelope) -> aio_pika.Message:
    return aio_pika.Message(
        body=msgspec.json.encode(envelope),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(envelope.event_id),
        type=envelope.type,
        timestamp=envelope.occurred_at,
        headers={"traceparent": envelope.traceparent, "tenant_id": envelope.tenant_id},
    )


class RabbitConsumer:
    def __init__(self, channel: AbstractChannel, task: asyncio.Task[None]) -> None:
        self._channel = channel
        self._task = task

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        with contextlib.suppress(Exception):
            await self._channel.close()

    async def stopped(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._task)


class RabbitBus:
    def __init__(self, url: str, *, window: int = 200) -> None:
        self._url = url
        self._window = window
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}

    async def start(self, bindings: Sequence[Binding]) -> None:
        if self._connection is None:
            self._connection = await aio_pika.connect_robust(self._url, client_properties={"connection_name": "aiwp"})
        channel = await self._connection.channel()
        try:
            await declare_topology(channel, bindings)
        finally:
            await channel.close()

    async def _exchange(self, name: str) -> AbstractExchange:
        if self._publish_channel is None or self._publish_channel.is_closed:
            assert self._connection is not None, "start() the bus first"
            self._publish_channel = await self._connection.channel(publisher_confirms=True, on_return_raises=False)
            self._publish_channel.return_callbacks.add(_returned)
            self._exchanges.clear()
        if name not in self._exchanges:
            self._exchanges[name] = await self._publish_channel.get_exchange(name, ensure=False)
        return self._exchanges[name]

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        window = asyncio.Semaphore(self._window)

        async def one(envelope: Envelope) -> None:
            try:
                exchange = await self._exchange(exchange_of(envelope.context))
                await exchange.publish(to_message(envelope), routing_key(envelope), mandatory=True)
            finally:
                window.release()

        tasks: list[asyncio.Task[None]] = []
        try:
            for envelope in envelopes:
                await window.acquire()
                tasks.append(asyncio.create_task(one(envelope)))
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def consume(
        self, binding: Binding, handler: BatchHandler, *, prefetch: int, max_failures: int, on_poison: PoisonHandler
    ) -> RabbitConsumer:
        assert self._connection is not None, "start() the bus first"
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue = await channel.get_queue(binding.queue, ensure=True)
        inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        await queue.consume(inbox.put, no_ack=False)

        async def run() -> None:
            while True:
                batch = [await inbox.get()]
                while len(batch) < prefetch and not inbox.empty():
                    batch.append(inbox.get_nowait())
                deliveries = [_delivery(message) for message in batch]
                if not await deliver(deliveries, handler, max_failures=max_failures, on_poison=on_poison):
                    return

        return RabbitConsumer(channel, asyncio.create_task(run(), name=f"consume {binding.queue}"))

    async def healthy(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def declare_work(self, queues: Sequence[WorkQueue]) -> None:
        assert self._connection is not None, "start() the bus first"
        channel = await self._connection.channel()
        try:
            await declare_topology(channel, [])
            for work in queues:
                await declare_work_queue(channel, work)
        finally:
            await channel.close()

    async def consume_work(self, queue: WorkQueue, handler: WorkHandler, *, concurrency: int) -> RabbitConsumer:
        assert self._connection is not None, "start() the bus first"
        await self.declare_work([queue])
        channel = await self._connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=concurrency)
        source = await channel.get_queue(queue.queue, ensure=True)
        running: set[asyncio.Task[None]] = set()

        async def one(message: AbstractIncomingMessage) -> None:
            envelope = _decoder.decode(message.body)
            headers = dict(message.headers or {})
            try:
                outcome = await handler(envelope)
            except Exception:  # an unexpected failure: retry later, waiting longer each time
                failures = int(str(headers.get(FAILURES_HEADER, 0))) + 1
                headers[FAILURES_HEADER] = failures
                log.exception("work item %s failed (%d time(s)); it will be retried", message.message_id, failures)
                outcome = queue.failure_delay(failures)
            try:
                if outcome == "done":
                    await message.ack()
                elif outcome == "dead":
                    await message.reject(requeue=False)
                else:
                    delay_queue, _ = queue.delay_queue(float(outcome))
                    retry = aio_pika.Message(
                        body=message.body,
                        content_type=message.content_type,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        message_id=message.message_id,
                        type=message.type,
                        headers=headers,
                    )
                    await channel.default_exchange.publish(retry, routing_key=delay_queue)
                    await message.ack()
            except (aio_pika.exceptions.AMQPError, RuntimeError) as error:
                log.info("settling %s failed (%s); it will be redelivered", message.message_id, error)

        async def deliver(message: AbstractIncomingMessage) -> None:
            task = asyncio.create_task(one(message))
            running.add(task)
            task.add_done_callback(running.discard)

        tag = await source.consume(deliver, no_ack=False)

        async def run() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                with contextlib.suppress(Exception):
                    await source.cancel(tag)
                for task in running:
                    task.cancel()

        return RabbitConsumer(channel, asyncio.create_task(run(), name=f"work {queue.queue}"))

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


def _delivery(message: AbstractIncomingMessage) -> Delivery:
    # After a reconnect, a message of the old channel cannot be settled: the broker redelivers it, and
    # the projector skips it (its position is applied). So a failed settle is logged, not raised.
    async def ack() -> None:
        try:
            await message.ack()
        except (aio_pika.exceptions.AMQPError, RuntimeError) as error:
            log.info("ack of %s failed (%s); it will be redelivered and skipped", message.message_id, error)

    async def dead_letter() -> None:
        try:
            await message.reject(requeue=False)
        except (aio_pika.exceptions.AMQPError, RuntimeError) as error:
            log.warning("dead-lettering %s failed (%s); it will be redelivered", message.message_id, error)

    return Delivery(_decoder.decode(message.body), ack, dead_letter)


def _returned(_: Any, message: Any) -> None:
    log.warning("message %s was returned unroutable (no queue bound); it stays in the event store", message.message_id)


async def declare_work_queue(channel: AbstractChannel, work: WorkQueue) -> None:
    """The work queue (competing consumers), its delay tiers (TTL, then back to it) and its dead-letter queue."""
    dlx = await channel.declare_exchange(DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    dead = await channel.declare_queue(f"{work.queue}.dlq", durable=True)
    await dead.bind(dlx, routing_key=work.queue)
    queue = await channel.declare_queue(
        work.queue,
        durable=True,
        arguments={"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE, "x-dead-letter-routing-key": work.queue},
    )
    for exchange, pattern in work.sources:
        await queue.bind(exchange, routing_key=pattern)
    for seconds in work.retry_delays:
        await channel.declare_queue(
            f"{work.queue}.delay.{seconds}s",
            durable=True,
            arguments={
                "x-message-ttl": seconds * 1000,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": work.queue,
            },
        )


async def declare_topology(channel: AbstractChannel, bindings: Sequence[Binding]) -> None:
    system = await channel.declare_exchange(SYSTEM_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
    for context in CONTEXTS:
        exchange = await channel.declare_exchange(exchange_of(context), aio_pika.ExchangeType.TOPIC, durable=True)
        await system.bind(exchange, routing_key="#")
    dlx = await channel.declare_exchange(DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    for binding in bindings:
        dead = await channel.declare_queue(f"{binding.queue}.dlq", durable=True)
        await dead.bind(dlx, routing_key=binding.queue)
        queue = await channel.declare_queue(
            binding.queue,
            durable=True,
            arguments={
                "x-single-active-consumer": True,
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                "x-dead-letter-routing-key": binding.queue,
            },
        )
        if binding.exchange == SYSTEM_EXCHANGE:
            await queue.bind(binding.exchange, routing_key="")
            continue
        for key in binding.keys:
            await queue.bind(binding.exchange, routing_key=key)
        if "#" not in binding.keys:  # a queue declared before projections took only their own events
            await queue.unbind(binding.exchange, routing_key="#")
