"""The shape every domain event shares, and the snapshot of an aggregate."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

import msgspec


class EventMetadata(msgspec.Struct, frozen=True, kw_only=True):
    """Who caused an event, on whose behalf, and within which conversation of messages."""

    tenant_id: str
    actor: str
    correlation_id: UUID
    causation_id: UUID
    traceparent: str = ""
    # The data subject the event is about (a pseudonymous id): its personal fields are sealed with that
    # subject's key (ADR 0008). UNSET is left out of the JSON, so events without a subject encode as before.
    subject: str | msgspec.UnsetType = msgspec.UNSET


class StepRef(msgspec.Struct, frozen=True, kw_only=True):
    """The workflow step (and its attempt) on whose behalf a run or a validation was requested."""

    instance_id: UUID
    step_id: str
    attempt: int


class DomainEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A business fact that happened to one aggregate, at one version of it.

    `originator_id` and `originator_version` are the names the eventsourcing library's
    recorder uses for the stream id and the position inside the stream.
    """

    class_version: ClassVar[int] = 1

    originator_id: UUID
    originator_version: int
    timestamp: datetime
    metadata: EventMetadata


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The state of an aggregate at one version, so that a long stream loads from here on."""

    originator_id: UUID
    originator_version: int
    timestamp: datetime
    topic: str
    state: dict[str, Any]

    @classmethod
    def take(cls, aggregate: Any) -> Snapshot:
        kind = type(aggregate)
        return cls(
            originator_id=aggregate.id,
            originator_version=aggregate.version,
            timestamp=aggregate.modified_at,
            topic=f"{kind.__module__}:{kind.__qualname__}",
            state=msgspec.to_builtins(aggregate),
        )
