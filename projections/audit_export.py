"""Compliance exports of the audit trail: the rows of a position range (optionally one tenant's), as JSON lines
or CSV, decoded from the exact bytes the chain hashed, and the manifest that describes the file."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from projections.audit_events import AuditRecord
from projections.projection import Connection

FORMATS = ("jsonl", "csv")
MANIFEST_SCHEMA = "aiwp.audit.export/v1"
# An exported row: the audited record's fields as its hashed bytes say, its hash, and its data last.
COLUMNS = (*(name for name in AuditRecord.__struct_fields__ if name != "data"), "hash", "data")
# What an exported row's data goes through before it is written: (data, tenant) -> data as it may be shown.
Disclose = Callable[[Any, str], Awaitable[Any]]
_decoder = msgspec.json.Decoder(AuditRecord)
_encoder = msgspec.json.Encoder()


@dataclass
class Exported:
    rows: int = 0
    first_position: int | None = None
    last_position: int | None = None
    head: bytes | None = None  # the hash of the last row exported: the chain head at `last_position`
    sha256: str = ""


async def export_rows(conn: Connection, start: int, end: int, tenant: str | None) -> AsyncIterator[Any]:
    """The rows in position order, streamed (call inside a transaction)."""
    query = (
        "SELECT position, canonical, hash FROM audit_events WHERE position >= $1 AND position <= $2"
        " AND ($3::text IS NULL OR tenant_id = $3) ORDER BY position"
    )
    async for row in conn.cursor(query, start, end, tenant, prefetch=5000):
        yield row


async def as_exported(row: Any, disclose: Disclose) -> dict[str, Any]:
    """One row as exported: what its canonical bytes say, its hash, and its data passed through `disclose`."""
    record = _decoder.decode(bytes(row["canonical"]))
    fields = {name: getattr(record, name) for name in record.__struct_fields__ if name != "data"}
    exported: dict[str, Any] = msgspec.to_builtins(fields)
    exported["hash"] = bytes(row["hash"]).hex()
    exported["data"] = await disclose(msgspec.json.decode(record.data), record.tenant_id)
    return exported


class _Hashing:
    """Writes through to the file and hashes what it writes."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.file.write(data)


async def write_export(
    rows: AsyncIterator[Any],
    out: Path,
    fmt: str,
    disclose: Disclose,
    progress: Callable[[int], None] = lambda _: None,
) -> Exported:
    """Writes the rows to `out` (which must not exist) and says what was written."""
    done = Exported()
    with out.open("xb") as file:
        sink = _Hashing(file)
        text = io.StringIO()
        table = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
        if fmt == "csv":
            table.writeheader()
        async for row in rows:
            exported = await as_exported(row, disclose)
            if fmt == "csv":
                exported["data"] = _encoder.encode(exported["data"]).decode()
                table.writerow(exported)
                sink.write(text.getvalue().encode())
                text.seek(0)
                text.truncate()
            else:
                sink.write(_encoder.encode(exported) + b"\n")
            done.rows += 1
            if done.first_position is None:
                done.first_position = row["position"]
            done.last_position = row["position"]
            done.head = bytes(row["hash"])
            if done.rows % 10_000 == 0:
                progress(done.rows)
        if fmt == "csv" and text.tell():
            sink.write(text.getvalue().encode())
    done.sha256 = sink.digest.hexdigest()
    return done


def manifest(
    exported: Exported, *, out: Path, fmt: str, start: int, end: int, tenant: str | None, store: str, created_at: str
) -> dict[str, Any]:
    return {
        "schema": MANIFEST_SCHEMA,
        "store": store,
        "file": out.name,
        "format": fmt,
        "filters": {"from": start, "to": end, "tenant": tenant},
        "rows": exported.rows,
        "first_position": exported.first_position,
        "last_position": exported.last_position,
        "chain_head": exported.head.hex() if exported.head is not None else None,
        "sha256": exported.sha256,
        "created_at": created_at,
    }
