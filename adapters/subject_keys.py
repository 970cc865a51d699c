"""The data subjects' keys (table `subject_keys`), and the in-memory ring every process reads them through.

A key is made on the first write that needs it. Erasing a subject sets its key to NULL and stamps
`erased_at`: the row stays as a tombstone, so a later write for that subject is refused
(`SubjectErased`) instead of quietly getting a new key. Keys are cached for `ttl` seconds; an erase
takes effect in every running process within that time (ADR 0008).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

import asyncpg
import msgspec

from adapters.event_store.sealing import new_key, reveal_json, reveal_value, strings_of, subjects_in
from commands.errors import SubjectErased


class SubjectKey(msgspec.Struct, frozen=True, kw_only=True):
    """What `aiwp gdpr subjects` shows of a key: never the key itself."""

    tenant_id: str
    subject: str
    created_at: datetime
    erased_at: datetime | None


class KeyTable(Protocol):
    """Where the keys live."""

    async def create(self, tenant_id: str, subject: str, key: bytes) -> bytes | None:
        """Inserts the key unless the subject has a row; returns the subject's key (None if it was erased)."""
        ...

    async def fetch(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], bytes | None]:
        """The rows there are among `pairs`: key, or None for an erased subject."""
        ...

    async def erase(self, tenant_id: str, subject: str) -> bool | None:
        """Drops the key; True if it did, False if it was already erased, None for an unknown subject."""
        ...

    async def list(self, tenant_id: str | None) -> list[SubjectKey]: ...


class PostgresKeyTable:
    """`subject_keys` through an asyncpg pool (the pool's search_path names the schema)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, tenant_id: str, subject: str, key: bytes) -> bytes | None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO subject_keys (tenant_id, subject, key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                tenant_id,
                subject,
                key,
            )
            row = await conn.fetchrow(
                "SELECT key FROM subject_keys WHERE tenant_id = $1 AND subject = $2", tenant_id, subject
            )
        assert row is not None
        return bytes(row["key"]) if row["key"] is not None else None

    async def fetch(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], bytes | None]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT k.tenant_id, k.subject, k.key FROM subject_keys k"
                " JOIN unnest($1::text[], $2::text[]) AS p(tenant_id, subject)"
                " ON k.tenant_id = p.tenant_id AND k.subject = p.subject",
                [tenant for tenant, _ in pairs],
                [subject for _, subject in pairs],
            )
        return {(r["tenant_id"], r["subject"]): bytes(r["key"]) if r["key"] is not None else None for r in rows}

    async def erase(self, tenant_id: str, subject: str) -> bool | None:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT key IS NULL AS erased FROM subject_keys WHERE tenant_id = $1 AND subject = $2 FOR UPDATE",
                tenant_id,
                subject,
            )
            if row is None:
                return None
            if row["erased"]:
                return False
            await conn.execute(
                "UPDATE subject_keys SET key = NULL, erased_at = now() WHERE tenant_id = $1 AND subject = $2",
                tenant_id,
                subject,
            )
            return True

    async def list(self, tenant_id: str | None) -> list[SubjectKey]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT tenant_id, subject, created_at, erased_at FROM subject_keys"
                " WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY tenant_id, subject",
                tenant_id,
            )
        return [SubjectKey(**dict(row)) for row in rows]


class MemoryKeyTable:
    """The same table in memory, for stores that live in memory (tests)."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._rows: dict[tuple[str, str], tuple[bytes | None, datetime, datetime | None]] = {}
        self._clock = clock

    async def create(self, tenant_id: str, subject: str, key: bytes) -> bytes | None:
        return self._rows.setdefault((tenant_id, subject), (key, self._clock(), None))[0]

    async def fetch(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], bytes | None]:
        return {pair: self._rows[pair][0] for pair in pairs if pair in self._rows}

    async def erase(self, tenant_id: str, subject: str) -> bool | None:
        row = self._rows.get((tenant_id, subject))
        if row is None:
            return None
        if row[0] is None:
            return False
        self._rows[(tenant_id, subject)] = (None, row[1], self._clock())
        return True

    async def list(self, tenant_id: str | None) -> list[SubjectKey]:
        return [
            SubjectKey(tenant_id=t, subject=s, created_at=created, erased_at=erased)
            for (t, s), (_, created, erased) in sorted(self._rows.items())
            if tenant_id is None or t == tenant_id
        ]


class KeyRing:
    """The keys a process has read, each kept `ttl` seconds; the synchronous mapper reads from here."""

    def __init__(self, table: KeyTable, *, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.table = table
        self._ttl = ttl
        self._clock = clock
        self._keys: dict[tuple[str, str], tuple[bytes | None, float]] = {}

    async def ensure(self, tenant_id: str, subject: str) -> None:
        """Makes sure the subject has a key for a write (creating it); raises `SubjectErased` if it was erased."""
        cached = self._keys.get((tenant_id, subject))
        if cached is None or cached[0] is None or self._clock() - cached[1] > self._ttl:
            key = await self.table.create(tenant_id, subject, new_key())
            self._keys[(tenant_id, subject)] = (key, self._clock())
            if key is None:
                raise SubjectErased(f"data subject {subject!r} was erased; nothing more is recorded about it")

    async def load(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Reads the keys of these subjects that are not cached, or cached for longer than the TTL."""
        now = self._clock()
        stale = sorted({p for p in pairs if (c := self._keys.get(p)) is None or now - c[1] > self._ttl})
        if not stale:
            return
        found = await self.table.fetch(stale)
        for pair in stale:
            # A subject without a row has never had a key: nothing of it can be opened, as if erased.
            self._keys[pair] = (found.get(pair), now)

    def key(self, tenant_id: str, subject: str) -> bytes | None:
        """The cached key (None once erased); raises KeyError when it was never loaded."""
        return self._keys[(tenant_id, subject)][0]

    def sealing_key(self, tenant_id: str, subject: str) -> bytes:
        """The key to seal with, which `ensure` has just loaded."""
        key = self._keys.get((tenant_id, subject), (None, 0.0))[0]
        if key is None:
            raise SubjectErased(f"data subject {subject!r} has no key to seal with (erased, or not ensured)")
        return key

    async def erase(self, tenant_id: str, subject: str) -> bool | None:
        """Drops the subject's key here and in the table; see `KeyTable.erase` for the answer."""
        erased = await self.table.erase(tenant_id, subject)
        if erased is not None:
            self._keys[(tenant_id, subject)] = (None, self._clock())
        return erased

    async def subjects(self, tenant_id: str | None = None) -> list[SubjectKey]:
        return await self.table.list(tenant_id)


async def reveal(value: Any, tenant_id: str, keyring: KeyRing) -> Any:
    """Any JSON-like value with the sealed strings of that tenant's subjects opened (or `[erased]`).

    The one function every output that presents data goes through: the query API (as JSON bytes, see
    `reveal_bytes`), `aiwp events`, exports and traces.
    """
    subjects = {subject for text in strings_of(value) for subject in subjects_in(text)}
    if not subjects:
        return value
    await keyring.load((tenant_id, subject) for subject in subjects)
    return reveal_value(value, tenant_id, keyring.key)


async def reveal_bytes(body: bytes, tenant_id: str, keyring: KeyRing) -> bytes:
    """`reveal` for JSON that is already encoded: the sealed strings are opened in place."""
    subjects = subjects_in(body)
    if not subjects:
        return body
    await keyring.load((tenant_id, subject) for subject in subjects)
    return reveal_json(body, tenant_id, keyring.key)
