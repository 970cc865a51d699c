"""`DataSubject`: a person the platform holds personal data about, known only by a pseudonymous id.

Its stream exists once the subject is erased: the erasure is the fact worth recording (who asked, when).
The event holds the pseudonymous id and nothing personal; the key that sealed the subject's data is
dropped next to it (ADR 0008). The stream's id derives from (tenant, subject), so there is one per subject.
"""

from __future__ import annotations

import uuid
from typing import Any, Self
from uuid import UUID

from domain.aggregate import Aggregate, CommandContext
from domain.events import DomainEvent
from domain.personal import SUBJECT
from domain.privacy.errors import PrivacyError

DATA_SUBJECT_NAMESPACE = UUID("7d1e2f3a-9b4c-4e5d-8f60-1a2b3c4d5e6f")


class DataSubjectErased(DomainEvent, frozen=True, kw_only=True):
    erased_subject: str  # the pseudonymous id; the event's metadata carries no subject, so nothing is sealed
    reason: str = ""


class DataSubject(Aggregate, kw_only=True):
    creation_event = DataSubjectErased

    erased_subject: str
    reason: str = ""

    @staticmethod
    def id_of(tenant_id: str, subject: str) -> UUID:
        """The one stream of a subject of a tenant."""
        return uuid.uuid5(DATA_SUBJECT_NAMESPACE, f"{tenant_id}\x1f{subject}")

    @classmethod
    def erase(cls, ctx: CommandContext, *, subject: str, reason: str = "") -> tuple[Self, DataSubjectErased]:
        """Records that the subject's personal data was erased (its key dropped)."""
        if not SUBJECT.match(subject):
            raise PrivacyError(f"{subject!r} is not a data subject id (letters, digits, '.', '_' or '-', at most 64)")
        plain = CommandContext(
            at=ctx.at,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            correlation_id=ctx.correlation_id,
            causation_id=ctx.causation_id,
            traceparent=ctx.traceparent,
        )
        return cls._create(
            plain, cls.id_of(ctx.tenant_id, subject), DataSubjectErased, erased_subject=subject, reason=reason
        )

    @classmethod
    def created_by(cls, event: Any) -> Self:
        assert isinstance(event, DataSubjectErased)
        return cls(**cls._identity(event), erased_subject=event.erased_subject, reason=event.reason)

    def apply(self, event: Any) -> None:
        super().apply(event)
