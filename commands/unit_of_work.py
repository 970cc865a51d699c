"""The one way a handler changes an aggregate: load for the tenant, check the version, decide, save."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar
from uuid import UUID

from commands.errors import AggregateNotFound, ConcurrencyError
from commands.ports import EventStore
from commands.results import CommandResult
from domain.aggregate import Aggregate, CommandContext
from domain.events import DomainEvent

A = TypeVar("A", bound=Aggregate)

# Ids derived from an idempotency key live in their own namespace, per tenant and kind.
IDEMPOTENCY_NAMESPACE = uuid.UUID("5b0c1f3e-7a8d-4d1e-9a57-0f2a3c4b5d6e")


def new_aggregate_id(ctx: CommandContext, kind: type[Aggregate], idempotency_key: str | None) -> UUID:
    """A fresh id, or — with an idempotency key — the same id for every retry of the same create."""
    if idempotency_key is None:
        return uuid.uuid4()
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{ctx.tenant_id}\x1f{kind.__name__}\x1f{idempotency_key}")


async def load(store: EventStore, kind: type[A], aggregate_id: UUID, ctx: CommandContext) -> A:
    """The aggregate, if it belongs to the caller's tenant; another tenant's is not found."""
    aggregate = await store.get(kind, aggregate_id)
    if aggregate.tenant_id != ctx.tenant_id:
        raise AggregateNotFound(f"{kind.__name__} {aggregate_id} not found")
    return aggregate


async def create(store: EventStore, aggregate: Aggregate, event: DomainEvent) -> CommandResult:
    """Saves a new aggregate; a retry with the same derived id answers with the first one."""
    try:
        position = await store.save(aggregate, [event])
    except ConcurrencyError:
        existing = await store.get(type(aggregate), aggregate.id)
        if existing.tenant_id != aggregate.tenant_id:
            raise
        first = await store.position_of(aggregate.id, 1)
        return CommandResult(id=aggregate.id, version=existing.version, position=first, created=False)
    return CommandResult(id=aggregate.id, version=aggregate.version, position=position, created=True)


async def change(
    store: EventStore,
    kind: type[A],
    aggregate_id: UUID,
    ctx: CommandContext,
    decide: Callable[[A], Sequence[DomainEvent]],
    *,
    expected_version: int | None = None,
) -> CommandResult:
    """Loads, checks the caller's expected version, decides and saves."""
    aggregate = await load(store, kind, aggregate_id, ctx)
    if expected_version is not None and aggregate.version != expected_version:
        raise ConcurrencyError(
            f"{kind.__name__} {aggregate_id} is at version {aggregate.version}, not {expected_version}"
        )
    events = decide(aggregate)
    position = await store.save(aggregate, events)
    return CommandResult(id=aggregate_id, version=aggregate.version, position=position)


class IdentityMap:
    """The store as one unit of work sees it: an aggregate it loaded or saved is not loaded again.

    If another writer saved the aggregate meanwhile, the next save fails with `ConcurrencyError` — the
    answer a fresh load would have led to as well, one step later. A failed save forgets the aggregate.
    """

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._seen: dict[UUID, Aggregate] = {}

    async def get(self, kind: type[A], aggregate_id: UUID, *, version: int | None = None) -> A:
        seen = self._seen.get(aggregate_id)
        if version is None and isinstance(seen, kind):
            return seen
        aggregate = await self._store.get(kind, aggregate_id, version=version)
        if version is None:
            self._seen[aggregate_id] = aggregate
        return aggregate

    async def save(self, aggregate: Aggregate, events: Sequence[DomainEvent]) -> int:
        try:
            position = await self._store.save(aggregate, events)
        except BaseException:
            self._seen.pop(aggregate.id, None)
            raise
        self._seen[aggregate.id] = aggregate
        return position

    async def position_of(self, aggregate_id: UUID, version: int) -> int:
        return await self._store.position_of(aggregate_id, version)
