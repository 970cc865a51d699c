"""The audit trail: every event, append-only and hash-chained.

Each row keeps the exact canonical bytes it was hashed from, and
`hash = SHA-256(prev_hash || canonical)`, starting from 32 zero bytes. The chain head is stored
with the projection's position, in the same transaction as the rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from domain.catalog import context_of
from domain.codec import encode_event, topic_of
from domain.envelope import event_id_of
from domain.events import DomainEvent
from projections.projection import Connection, Projection, Recorded, as_dicts

NAME = "audit_events"
GENESIS = bytes(32)


class AuditRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The canonical form of one audited event; its JSON bytes are what the chain hashes.

    It mirrors the wire `Envelope` on purpose but stays apart from it: the hashed form must not change when
    the wire format gains a field.
    """

    position: int
    event_id: UUID
    stream_id: UUID
    stream_version: int
    type: str
    topic: str
    context: str
    schema_version: int
    occurred_at: datetime
    tenant_id: str
    actor: str
    correlation_id: UUID
    causation_id: UUID
    traceparent: str
    data: msgspec.Raw


_encoder = msgspec.json.Encoder()


def audit_record(position: int, event: DomainEvent) -> AuditRecord:
    cls = type(event)
    return AuditRecord(
        position=position,
        event_id=event_id_of(event.originator_id, event.originator_version),
        stream_id=event.originator_id,
        stream_version=event.originator_version,
        type=cls.__name__,
        topic=topic_of(cls),
        context=context_of(cls),
        schema_version=getattr(cls, "class_version", 1),
        occurred_at=event.timestamp.astimezone(UTC),
        tenant_id=event.metadata.tenant_id,
        actor=event.metadata.actor,
        correlation_id=event.metadata.correlation_id,
        causation_id=event.metadata.causation_id,
        traceparent=event.metadata.traceparent,
        data=msgspec.Raw(encode_event(event)),
    )


def chain(prev_hash: bytes, canonical: bytes) -> bytes:
    return hashlib.sha256(prev_hash + canonical).digest()


COLUMNS = (
    "position",
    "occurred_at",
    "event_id",
    "stream_id",
    "stream_version",
    "type",
    "context",
    "tenant_id",
    "actor",
    "correlation_id",
    "causation_id",
    "canonical",
    "prev_hash",
    "hash",
)


class AuditProjection(Projection):
    """Handles every event; writes with COPY, extending the chain from the stored head."""

    def topics(self) -> list[str] | None:
        return None

    async def apply(self, conn: Connection, batch: Sequence[Recorded]) -> None:
        if not batch:
            return
        head = await conn.fetchval("SELECT chain_head FROM projection_positions WHERE name = $1", self.name)
        head = bytes(head) if head is not None else GENESIS
        rows = []
        months: set[tuple[int, int]] = set()
        sha256 = hashlib.sha256
        for position, event in batch:
            record = audit_record(position, event)
            canonical = _encoder.encode(record)
            digest = sha256(head + canonical).digest()  # `chain`, inlined: this loop runs once per event
            occurred_at = record.occurred_at
            rows.append(
                (
                    position,
                    occurred_at,
                    record.event_id,
                    record.stream_id,
                    record.stream_version,
                    record.type,
                    record.context,
                    record.tenant_id,
                    record.actor,
                    record.correlation_id,
                    record.causation_id,
                    canonical,
                    head,
                    digest,
                )
            )
            months.add((occurred_at.year, occurred_at.month))
            head = digest
        for year, month in sorted(months):
            await conn.execute("SELECT audit_ensure_partition($1)", datetime(year, month, 1, tzinfo=UTC))
        await conn.copy_records_to_table("audit_events", records=rows, columns=COLUMNS)
        await conn.execute(
            "INSERT INTO projection_positions (name, chain_head) VALUES ($1, $2)"
            " ON CONFLICT (name) DO UPDATE SET chain_head = excluded.chain_head",
            self.name,
            head,
        )


projection = AuditProjection(name=NAME, context=None, tables=("audit_events",), handlers={})


async def list_audit_events(
    conn: Connection,
    tenant_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT position, occurred_at, event_id, stream_id, stream_version, type, context, tenant_id, actor,"
        " correlation_id, causation_id, convert_from(canonical, 'UTF8')::jsonb -> 'data' AS data"
        " FROM audit_events WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR occurred_at >= $2)"
        " AND ($3::timestamptz IS NULL OR occurred_at < $3) AND position > $4 ORDER BY position LIMIT $5",
        tenant_id,
        since,
        until,
        after,
        limit,
    )
    return as_dicts(rows)
