"""The batch, retry and dead-letter logic every consumer shares, whatever the broker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from adapters.bus.port import BatchHandler, PoisonHandler
from domain.envelope import Envelope

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    envelope: Envelope
    ack: Callable[[], Awaitable[None]]
    dead_letter: Callable[[], Awaitable[None]]


class StopConsuming(Exception):
    """Raised by a handler that must not take more messages (a stalled projector)."""


def is_transient(error: BaseException) -> bool:
    """Failures of the infrastructure, not of the message: wait and retry, never dead-letter for them."""
    return isinstance(
        error,
        OSError
        | TimeoutError
        | asyncpg.InterfaceError
        | asyncpg.exceptions.ConnectionDoesNotExistError
        | asyncpg.exceptions.CannotConnectNowError
        | asyncpg.exceptions.AdminShutdownError
        | asyncpg.exceptions.TooManyConnectionsError
        | asyncpg.exceptions.SerializationError
        | asyncpg.exceptions.DeadlockDetectedError,
    )


async def _call(handler: BatchHandler, envelopes: list[Envelope], *, backoff: float = 0.5) -> None:
    """Calls the handler, waiting out infrastructure failures (the message is not to blame)."""
    while True:
        try:
            await handler(envelopes)
            return
        except Exception as error:
            if not is_transient(error):
                raise
            log.warning("infrastructure failure (%s); retrying in %.1fs", error, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)


async def deliver(batch: list[Delivery], handler: BatchHandler, *, max_failures: int, on_poison: PoisonHandler) -> bool:
    """Hands a batch over; on failure retries message by message. False: stop consuming."""
    try:
        await _call(handler, [d.envelope for d in batch])
    except StopConsuming:
        return False
    except Exception:
        log.warning("batch of %d failed; retrying one by one", len(batch), exc_info=True)
    else:
        for delivery in batch:
            await delivery.ack()
        return True
    for delivery in batch:
        error: BaseException | None = None
        for _ in range(max_failures):
            try:
                await _call(handler, [delivery.envelope])
            except StopConsuming:
                return False
            except Exception as failure:
                error = failure
            else:
                error = None
                break
        if error is not None:
            log.error("message at position %s failed %d times: dead-lettered", delivery.envelope.position, max_failures)
            await delivery.dead_letter()
            await on_poison(delivery.envelope, error)
            return False
        await delivery.ack()
    return True
