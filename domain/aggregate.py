"""The base every aggregate shares: decide by triggering events, evolve by applying them.

A decision method checks its guards, then calls `_trigger`, which builds the event from the
command's context (time, tenant, actor, ids) and applies it. Applying only assigns, so folding
the stored events over `None` rebuilds exactly the state the live aggregate had.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar, Self, TypeVar
from uuid import UUID

import msgspec

from domain.events import DomainEvent, EventMetadata, Snapshot


class DomainError(Exception):
    """A command that the model refuses; each context has its own subclass."""


class UnknownEvent(DomainError):
    """An aggregate was given an event it does not know how to apply."""


class NotThisKind(DomainError):
    """A stream was read as an aggregate of another kind than the one that wrote it."""


class CommandContext(msgspec.Struct, frozen=True, kw_only=True):
    """What every command brings from outside the model: when, who, for which tenant, and why."""

    at: datetime
    tenant_id: str
    actor: str
    correlation_id: UUID
    causation_id: UUID
    traceparent: str = ""
    subject: str = ""  # the data subject the command is about, if the tenant named one (ADR 0008)

    def metadata(self, subject: str = "") -> EventMetadata:
        """The events' metadata; `subject` (the stream's own) wins over the context's."""
        chosen = subject or self.subject
        return EventMetadata(
            tenant_id=self.tenant_id,
            actor=self.actor,
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
            traceparent=self.traceparent,
            subject=chosen if chosen else msgspec.UNSET,
        )


E = TypeVar("E", bound=DomainEvent)


class Aggregate(msgspec.Struct, kw_only=True):
    """State rebuilt from one stream of events."""

    creation_event: ClassVar[type[DomainEvent]]

    id: UUID
    version: int
    tenant_id: str
    created_at: datetime
    modified_at: datetime
    subject: str = ""  # the data subject of the stream: every later event of it names the same one

    @classmethod
    def created_by(cls, event: Any) -> Self:  # noqa: ARG003 - each aggregate overrides it
        """Builds the first state from the stream's first event."""
        raise TypeError(f"{cls.__name__} must define created_by")

    def apply(self, event: Any) -> None:
        """Assigns what one event says; never decides."""
        raise UnknownEvent(f"{type(self).__name__} does not apply {type(event).__name__}")

    @staticmethod
    def _identity(event: DomainEvent) -> dict[str, Any]:
        """The fields every aggregate takes from its first event."""
        return {
            "id": event.originator_id,
            "version": event.originator_version,
            "tenant_id": event.metadata.tenant_id,
            "created_at": event.timestamp,
            "modified_at": event.timestamp,
            "subject": event.metadata.subject or "",
        }

    def _advance(self, event: DomainEvent) -> None:
        self.apply(event)
        self.version = event.originator_version
        self.modified_at = event.timestamp

    @classmethod
    def _create(cls, ctx: CommandContext, aggregate_id: UUID, event_type: type[E], **data: Any) -> tuple[Self, E]:
        event = event_type(
            originator_id=aggregate_id,
            originator_version=1,
            timestamp=ctx.at,
            metadata=ctx.metadata(),
            **data,
        )
        return cls.created_by(event), event

    def _trigger(self, ctx: CommandContext, event_type: type[E], **data: Any) -> E:
        event = event_type(
            originator_id=self.id,
            originator_version=self.version + 1,
            timestamp=ctx.at,
            metadata=ctx.metadata(self.subject),
            **data,
        )
        self._advance(event)
        return event

    @classmethod
    def project(cls, events: Iterable[DomainEvent | Snapshot], initial: Self | None = None) -> Self | None:
        """Folds events (optionally starting from a snapshot) into state; `None` for an empty stream."""
        state = initial
        for event in events:
            if isinstance(event, Snapshot):
                if event.topic != f"{cls.__module__}:{cls.__qualname__}":
                    raise NotThisKind(f"stream {event.originator_id} is a {event.topic}, not a {cls.__name__}")
                state = msgspec.convert(event.state, cls)
            elif state is None:
                if not isinstance(event, cls.creation_event):
                    raise NotThisKind(f"stream {event.originator_id} is not a {cls.__name__}")
                state = cls.created_by(event)
            else:
                state._advance(event)
        return state
