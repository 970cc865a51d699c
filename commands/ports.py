"""What the write side needs from infrastructure, as Protocols; `ops/` wires the real ones in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Protocol, TypeVar
from uuid import UUID

import msgspec

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


class Replay(msgspec.Struct, frozen=True, kw_only=True):
    """The first answer to a request, kept under its idempotency key."""

    status_code: int
    body: bytes
    headers: dict[str, str]


Claim = Literal["claimed", "in_progress", "mismatch"] | Replay


class IdempotencyStore(Protocol):
    """Remembers, per tenant and key, the request a key was first used with and the answer it got."""

    async def claim(self, tenant_id: str, key: str, request_hash: bytes) -> Claim:
        """`claimed` for a new key; the stored answer for a finished one; `in_progress` or `mismatch`."""
        ...

    async def complete(self, tenant_id: str, key: str, answer: Replay) -> None:
        """Stores the answer of a claimed key."""
        ...

    async def release(self, tenant_id: str, key: str) -> None:
        """Forgets a claim whose request failed, so that a retry runs again."""
        ...


class Names(Protocol):
    """Finds an aggregate of a tenant by the name it was registered with (read from the read models)."""

    async def agent(self, tenant_id: str, name: str) -> UUID | None:
        """The active agent of that name, or None."""
        ...

    async def ruleset(self, tenant_id: str, name: str) -> UUID | None:
        """The rule set of that name (the newest, if several), or None."""
        ...


class Timers(Protocol):
    """Durable wake-ups: an instance is reconciled at (or soon after) each time scheduled for it,
    even if every process was down when it came due."""

    async def schedule(self, tenant_id: str, instance_id: UUID, due_at: datetime) -> None:
        """Idempotent: the same (instance, time) is kept once."""
        ...
