"""The orchestrator's process: events from the bus, due timers, and a sweep of unfinished instances at start.

The events come from a work queue bound to just the kinds the orchestrator reacts to, taken many at a time
(an instance's order does not matter: each wake-up looks at the instance as it is). The sweep is what
makes an embedded platform (whose in-process queues die with it) pick its instances up again after a
restart; on RabbitMQ the durable queue holds what was not handled, and the sweep is a cheap second look.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from uuid import UUID

from adapters.bus.port import ORCHESTRATOR_WORK, EventBus, WorkOutcome
from adapters.timers import PostgresTimers
from commands.orchestrator import Orchestrator
from domain.envelope import Envelope

log = logging.getLogger(__name__)


async def run_orchestrator(
    orchestrator: Orchestrator,
    bus: EventBus,
    timers: PostgresTimers,
    stop: asyncio.Event,
    *,
    unfinished: Callable[[], Awaitable[list[UUID]]],
    concurrency: int = 64,
    poll_seconds: float = 0.25,
) -> None:
    """Runs until `stop`: first reconciles every unfinished instance, then takes the events it reacts to
    (`concurrency` at a time, acknowledged once handled) and fires due timers."""

    async def fire(instance_id: UUID, due: datetime) -> None:
        await orchestrator.reconcile(instance_id, due=due)

    async def handle(envelope: Envelope) -> WorkOutcome:
        await orchestrator.handle([envelope])  # a failure is retried through the delay queues
        return "done"

    consumer = await bus.consume_work(ORCHESTRATOR_WORK, handle, concurrency=concurrency)
    try:
        swept = await unfinished()
        if swept:
            log.info("orchestrator: looking again at %d unfinished instance(s)", len(swept))
            await orchestrator.reconcile_all(swept)
        while not stop.is_set():
            try:
                while await timers.fire_due(fire) > 0:
                    pass
            except Exception:
                log.exception("orchestrator: firing timers failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_seconds)
    finally:
        await consumer.stop()
