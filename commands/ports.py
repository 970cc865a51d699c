"""What the write side needs from infrastructure, as Protocols; `ops/` wires the real ones in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar
from uuid import UUID

from domain.aggregate import Aggregate
from domain.events import DomainEvent

A = TypeVar("A", bound=Aggregate)


class EventStore(Protocol):
    """Loads aggregates from their streams and appends new events, atomically per save."""

    async def get(self, kind: type[A], aggregate_id: UUID, *, version: int | None = None) -> A:
        """The aggregate as of its latest (or the given) version; raises `AggregateNotFound`."""
        ...

    async def save(self, aggregate: Aggregate, events: Sequence[DomainEvent]) -> int:
        """Appends the events and returns the global position of the last one; raises `ConcurrencyError`."""
        ...

    async def position_of(self, aggregate_id: UUID, version: int) -> int:
        """The global position of one stored event; raises `AggregateNotFound`."""
        ...
