"""The bus interface the relay publishes to and the projectors consume from."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple, Protocol

from domain.catalog import exchange_of
from domain.envelope import Envelope

SYSTEM_EXCHANGE = "system.events"
DEAD_LETTER_EXCHANGE = "dlx"

BatchHandler = Callable[[list[Envelope]], Awaitable[None]]
PoisonHandler = Callable[[Envelope, BaseException], Awaitable[None]]


class Binding(NamedTuple):
    """A consumer queue and the exchange it is bound to (a context exchange with `#`, or the fanout)."""

    queue: str
    exchange: str

    @classmethod
    def for_projection(cls, name: str, context: str | None) -> Binding:
        return cls(f"projection.{name}", exchange_of(context) if context else SYSTEM_EXCHANGE)


class Consumer(Protocol):
    async def stop(self) -> None:
        """Stops taking messages; unacknowledged ones go back to the queue."""
        ...

    async def stopped(self) -> None:
        """Waits until the consumer stops (asked to, or after a poison message)."""
        ...


class EventBus(Protocol):
    async def start(self, bindings: Sequence[Binding]) -> None:
        """Connects and declares the topology (idempotently), including the given consumer queues."""
        ...

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Publishes in order; returns when every message is confirmed, raises if any is not."""
        ...

    async def consume(
        self, binding: Binding, handler: BatchHandler, *, prefetch: int, max_failures: int, on_poison: PoisonHandler
    ) -> Consumer:
        """Delivers batches in order; a message that fails `max_failures` times is dead-lettered and stops it."""
        ...

    async def healthy(self) -> bool:
        """Whether the bus can take messages now."""
        ...

    async def close(self) -> None: ...
