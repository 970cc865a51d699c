"""Verifying the audit trail's hash chain: the first row that does not verify, and why.

A row verifies when its `hash` is SHA-256(`prev_hash` || `canonical`), its `prev_hash` is the hash of the
row before it, and its columns say what its canonical bytes say. A forged row slipped in with a correct
hash of its own is named too: the row after it still links to the row before it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec

from projections.audit_events import GENESIS, AuditRecord, chain
from projections.projection import Connection

_decoder = msgspec.json.Decoder(AuditRecord)
CHECKED = ("position", "event_id", "stream_id", "stream_version", "type", "context", "tenant_id", "actor")


@dataclass(frozen=True)
class Verdict:
    rows: int
    first_bad: int | None = None  # the position of the first row that does not verify
    reason: str = ""
    head: bytes = GENESIS  # the hash of the last row checked
    last: int | None = None  # the position of the last row checked

    @property
    def ok(self) -> bool:
        return self.first_bad is None


async def audit_rows(conn: Connection, start: int, end: int | None) -> AsyncIterator[Any]:
    """The rows in position order, streamed (call inside a transaction)."""
    query = (
        "SELECT position, event_id, stream_id, stream_version, type, context, tenant_id, actor, canonical,"
        " prev_hash, hash FROM audit_events WHERE position >= $1 AND ($2::bigint IS NULL OR position <= $2)"
        " ORDER BY position, occurred_at"
    )
    async for row in conn.cursor(query, start, end, prefetch=5000):
        yield row


def _mismatch(row: Any) -> str:
    """What the row's columns say that its canonical bytes do not, or an empty string."""
    canonical = bytes(row["canonical"])
    if chain(bytes(row["prev_hash"]), canonical) != bytes(row["hash"]):
        return "its hash is not SHA-256(prev_hash || canonical): the row was changed"
    try:
        record = _decoder.decode(canonical)
    except msgspec.DecodeError:
        return "its canonical bytes are not an audit record"
    for column in CHECKED:
        if getattr(record, column) != row[column]:
            return f"its {column} column says {row[column]!r}, its canonical bytes say {getattr(record, column)!r}"
    return ""


async def verify(rows: AsyncIterable[Any], *, first: bool, origin: bytes = GENESIS) -> Verdict:
    """Walks the rows in position order; `first`: the walk starts at the trail's first row, which links to
    `origin` — genesis, or the chain head recorded where retention cut the trail."""
    count = 0
    before: Any = None  # the row before the current one
    two_before: Any = None
    async for row in rows:
        count += 1
        problem = _mismatch(row)
        if problem:
            return Verdict(count, row["position"], problem)
        expected = bytes(before["hash"]) if before is not None else (origin if first else None)
        if expected is not None and bytes(row["prev_hash"]) != expected:
            if two_before is not None and bytes(row["prev_hash"]) == bytes(two_before["hash"]):
                reason = (
                    f"it does not belong to the chain: the row after it (position {row['position']}) "
                    f"links to the row before it (position {two_before['position']})"
                )
                return Verdict(count, before["position"], reason)
            if before is None:
                where = "genesis" if origin == GENESIS else "the chain head recorded at the retention cut"
                return Verdict(count, row["position"], f"the first row of the chain does not start from {where}")
            reason = (
                f"its prev_hash is not the hash of the row before it (position {before['position']}): "
                "a row between them is missing, or the rows were reordered"
            )
            return Verdict(count, row["position"], reason)
        two_before, before = before, row
    if before is None:
        return Verdict(count, head=origin if first else GENESIS)
    return Verdict(count, head=bytes(before["hash"]), last=before["position"])
