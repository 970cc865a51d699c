"""The orchestrator's process: events from the bus, due timers, and a sweep of unfinished instances at start.

The sweep is what makes an embedded platform (whose in-process queues die with it) pick its instances
up again after a restart; on RabbitMQ the durable queue holds what was not handled, and the sweep is a
cheap second look.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from uuid import UUID

from adapters.bus.port import SYSTEM_EXCHANGE, Binding, Consumer, EventBus
from adapters.timers import PostgresTimers
from commands.orchestrator import Orchestrator
from domain.envelope import Envelope

log = logging.getLogger(__name__)
ORCHESTRATOR_BINDING = Binding("orchestrator", SYSTEM_EXCHANGE)


async def run_orchestrator(
    orchestrator: Orchestrator,
    bus: EventBus,
    timers: PostgresTimers,
    stop: asyncio.Event,
    *,
    unfinished: Callable[[], Awaitable[list[UUID]]],
    prefetch: int = 200,
    max_failures: int = 5,
    poll_seconds: float = 0.25,
) -> None:
    """Runs until `stop`: consumes the bus, fires due timers, and first reconciles every unfinished instance."""

    async def fire(instance_id: UUID, due: datetime) -> None:
        await orchestrator.reconcile(instance_id, due=due)

    async def poisoned(envelope: Envelope, error: BaseException) -> None:
        log.error("orchestrator gave up on %s at position %s: %s", envelope.type, envelope.position, error)

    async def consume() -> Consumer:
        return await bus.consume(
            ORCHESTRATOR_BINDING, orchestrator.handle, prefetch=prefetch, max_failures=max_failures, on_poison=poisoned
        )

    await bus.start([ORCHESTRATOR_BINDING])
    consumer = await consume()
    ended = asyncio.ensure_future(consumer.stopped())
    try:
        swept = await unfinished()
        if swept:
            log.info("orchestrator: looking again at %d unfinished instance(s)", len(swept))
            await orchestrator.reconcile_all(swept)
        while not stop.is_set():
            if ended.done():  # a poison message went to the dead-letter queue: go on with the rest
                consumer = await consume()
                ended = asyncio.ensure_future(consumer.stopped())
            try:
                while await timers.fire_due(fire) > 0:
                    pass
            except Exception:
                log.exception("orchestrator: firing timers failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_seconds)
    finally:
        ended.cancel()
        await consumer.stop()
