"""The in-process bus of embedded mode: same interface and delivery rules as RabbitMQ, in memory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from uuid import UUID

from adapters.bus.consumer_loop import Delivery, deliver
from adapters.bus.port import (
    SYSTEM_EXCHANGE,
    BatchHandler,
    Binding,
    PoisonHandler,
    WorkHandler,
    WorkQueue,
    topic_matches,
)
from domain.catalog import exchange_of
from domain.envelope import Envelope, routing_key

log = logging.getLogger(__name__)


class InProcessConsumer:
    def __init__(self, task: asyncio.Task[None]) -> None:
        self._task = task

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def stopped(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._task)


class InProcessBus:
    """Each bound queue is an asyncio queue; a dead-lettered message lands in `dead_letters[queue]`."""

    def __init__(self) -> None:
        self._queues: dict[Binding, asyncio.Queue[Envelope]] = {}
        self._work: dict[WorkQueue, asyncio.Queue[Envelope]] = {}
        self._routes: dict[tuple[str, str], list[asyncio.Queue[Envelope]]] = {}  # (exchange, key) → queues
        self._later: set[asyncio.TimerHandle] = set()
        self.dead_letters: dict[str, list[Envelope]] = {}

    async def start(self, bindings: Sequence[Binding]) -> None:
        for binding in bindings:
            self._queues.setdefault(binding, asyncio.Queue())
            self.dead_letters.setdefault(binding.queue, [])
        self._routes.clear()

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            route = (exchange_of(envelope.context), routing_key(envelope))
            queues = self._routes.get(route)
            if queues is None:
                queues = self._routes[route] = self._route(*route)
            for queue in queues:
                queue.put_nowait(envelope)

    def _route(self, exchange: str, key: str) -> list[asyncio.Queue[Envelope]]:
        """The queues an event goes to, as RabbitMQ would route it; kept per routing key until bindings change."""
        bound = [
            queue
            for binding, queue in self._queues.items()
            if binding.exchange == SYSTEM_EXCHANGE
            or (binding.exchange == exchange and any(topic_matches(k, key) for k in binding.keys))
        ]
        return bound + [items for work, items in self._work.items() if work.takes(exchange, key)]

    async def redeliver(self, queue: WorkQueue, envelopes: Sequence[Envelope]) -> None:
        """Hands work items out again (those a restart lost with the memory that held them)."""
        await self.declare_work([queue])
        for envelope in envelopes:
            self._work[queue].put_nowait(envelope)

    async def declare_work(self, queues: Sequence[WorkQueue]) -> None:
        for work in queues:
            self._work.setdefault(work, asyncio.Queue())
            self.dead_letters.setdefault(work.queue, [])
        self._routes.clear()

    async def consume_work(self, queue: WorkQueue, handler: WorkHandler, *, concurrency: int) -> InProcessConsumer:
        await self.declare_work([queue])
        items = self._work[queue]
        dead = self.dead_letters[queue.queue]
        loop = asyncio.get_running_loop()
        failed: dict[UUID, int] = {}  # unexpected failures per item, as RabbitMQ's header counts them

        async def one(envelope: Envelope) -> None:
            try:
                outcome = await handler(envelope)
            except Exception:  # an unexpected failure: retry later, waiting longer each time
                failures = failed[envelope.event_id] = failed.get(envelope.event_id, 0) + 1
                log.exception("work item %s failed (%d time(s)); it will be retried", envelope.event_id, failures)
                outcome = queue.failure_delay(failures)
            else:
                failed.pop(envelope.event_id, None)
            if outcome == "dead":
                dead.append(envelope)
            elif outcome != "done":
                _, delay = queue.delay_queue(float(outcome))
                handle = loop.call_later(delay, items.put_nowait, envelope)
                self._later.add(handle)

        async def run() -> None:
            slots = asyncio.Semaphore(concurrency)
            running: set[asyncio.Task[None]] = set()
            try:
                while True:
                    envelope = await items.get()
                    await slots.acquire()
                    task = asyncio.create_task(one(envelope))
                    running.add(task)
                    task.add_done_callback(running.discard)
                    task.add_done_callback(lambda _: slots.release())
            finally:
                for task in running:
                    task.cancel()

        return InProcessConsumer(asyncio.create_task(run(), name=f"work {queue.queue}"))

    async def consume(
        self, binding: Binding, handler: BatchHandler, *, prefetch: int, max_failures: int, on_poison: PoisonHandler
    ) -> InProcessConsumer:
        await self.start([binding])
        queue = self._queues[binding]
        dead = self.dead_letters[binding.queue]

        async def ack() -> None:
            return None

        async def run() -> None:
            while True:
                batch = [await queue.get()]
                while len(batch) < prefetch and not queue.empty():
                    batch.append(queue.get_nowait())
                deliveries = [Delivery(e, ack, _dead_letter(dead, e)) for e in batch]
                if not await deliver(deliveries, handler, max_failures=max_failures, on_poison=on_poison):
                    return

        return InProcessConsumer(asyncio.create_task(run(), name=f"consume {binding.queue}"))

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        for handle in self._later:
            handle.cancel()
        self._queues.clear()
        self._work.clear()
        self._routes.clear()


def _dead_letter(dead: list[Envelope], envelope: Envelope) -> Callable[[], Awaitable[None]]:
    async def move() -> None:
        dead.append(envelope)

    return move
