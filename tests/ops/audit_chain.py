"""Valid audit chains made directly — canonical bytes and hashes computed here, loaded with COPY as the owner,
the append-only triggers as they are (they allow INSERT) — and the ways a database owner could tamper with one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import msgspec
import psycopg
from psycopg.conninfo import conninfo_to_dict

from projections.audit_events import COLUMNS, GENESIS, AuditRecord, chain
from projections.projection import Connection

AIWP = Path(sys.executable).with_name("aiwp")
STREAM = UUID(int=1)
CORRELATION = UUID(int=2)
_encoder = msgspec.json.Encoder()


def rows(
    count: int,
    *,
    first: int = 1,
    head: bytes = GENESIS,
    at: Callable[[int], datetime] = lambda _: datetime(2026, 11, 2, tzinfo=UTC),
    tenant: Callable[[int], str] = lambda _: "acme",
) -> Iterator[tuple[Any, ...]]:
    """`count` chained rows from position `first`, linking to `head`; tuples in `COLUMNS` order."""
    for position in range(first, first + count):
        occurred_at = at(position) + timedelta(microseconds=position)
        tenant_id = tenant(position)
        event_id = UUID(int=position << 64)
        record = AuditRecord(
            position=position,
            event_id=event_id,
            stream_id=STREAM,
            stream_version=position,
            type="NoteTaken",
            topic="tests.ops:NoteTaken",
            context="tests",
            schema_version=1,
            occurred_at=occurred_at,
            tenant_id=tenant_id,
            actor="alice",
            correlation_id=CORRELATION,
            causation_id=CORRELATION,
            traceparent="",
            data=msgspec.Raw(b'{"note":%d,"who":"ada"}' % position),
        )
        canonical = _encoder.encode(record)
        digest = chain(head, canonical)
        yield (
            position,
            occurred_at,
            event_id,
            STREAM,
            position,
            "NoteTaken",
            "tests",
            tenant_id,
            "alice",
            CORRELATION,
            CORRELATION,
            canonical,
            head,
            digest,
        )
        head = digest


async def load(conn: Connection, made: Iterator[tuple[Any, ...]], batch: int = 50_000) -> int:
    """COPYs the rows in batches, creating the months' partitions; returns how many."""
    months: set[datetime] = set()
    loaded = 0
    chunk: list[tuple[Any, ...]] = []

    async def flush() -> None:
        for month in {r[1].replace(day=1, hour=0, minute=0, second=0, microsecond=0) for r in chunk} - months:
            await conn.execute("SELECT audit_ensure_partition($1)", month)
            months.add(month)
        await conn.copy_records_to_table("audit_events", records=chunk, columns=COLUMNS)
        chunk.clear()

    for row in made:
        chunk.append(row)
        loaded += 1
        if len(chunk) >= batch:
            await flush()
    if chunk:
        await flush()
    return loaded


async def as_owner(conn: Connection, *statements: str) -> None:
    """The database's owner, with the append-only triggers switched off for the session."""
    await conn.execute("SET session_replication_role = replica")
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.execute("SET session_replication_role = origin")


async def rewrite_from(conn: Connection, position: int, actor: str) -> None:
    """Changes the actor of the row at `position` — column and hashed bytes — and recomputes every later hash."""
    found = await conn.fetch(
        "SELECT position, canonical, prev_hash FROM audit_events WHERE position >= $1 ORDER BY position", position
    )
    head = bytes(found[0]["prev_hash"])
    await conn.execute("SET session_replication_role = replica")
    try:
        for row in found:
            canonical = bytes(row["canonical"])
            if row["position"] == position:
                canonical = canonical.replace(b'"actor":"alice"', f'"actor":"{actor}"'.encode())
                await conn.execute("UPDATE audit_events SET actor = $1 WHERE position = $2", actor, position)
            digest = chain(head, canonical)
            await conn.execute(
                "UPDATE audit_events SET canonical = $1, prev_hash = $2, hash = $3 WHERE position = $4",
                canonical,
                head,
                digest,
                row["position"],
            )
            head = digest
    finally:
        await conn.execute("SET session_replication_role = origin")


def env(database_url: str, schema: str, **settings: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIWP_")}
    return clean | {"AIWP_DATABASE_URL": database_url, "AIWP_DATABASE_SCHEMA": schema, "COLUMNS": "200"} | settings


def aiwp(*args: str, environ: dict[str, str], timeout: float = 120) -> tuple[int, Any, str]:
    """Runs the installed `aiwp`; (exit code, the JSON it printed or None, stderr)."""
    result = subprocess.run(
        [str(AIWP), *args], env=environ, capture_output=True, text=True, timeout=timeout, check=False
    )
    try:
        printed = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        printed = result.stdout
    return result.returncode, printed, result.stderr


@contextmanager
def platform_role(database_url: str) -> Iterator[str]:
    """A login role that is a member of `aiwp_app` (the platform's role: not the owner); its database URL."""
    name = f"aiwp_test_{uuid4().hex[:10]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN IN ROLE aiwp_app")
    try:
        params = conninfo_to_dict(database_url)
        yield f"postgresql://{name}@{params.get('host', '127.0.0.1')}:{params.get('port', 5432)}/{params['dbname']}"
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {name}")
