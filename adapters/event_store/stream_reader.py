"""Loading aggregates with asyncpg, on the event loop.

The library's repository reads through psycopg in worker threads; under load those threads and the event
loop take turns at the GIL and every load pays for the hops. This reader runs the same two queries —
the newest snapshot at or before the version asked for, then the events after it — on the tables the
library's recorder writes, decodes them with the same mapper (cipher included) and folds them with the
aggregate's own `project`. A snapshot that no longer fits its class is ignored: it is a cache, the events
are the truth. Loads are for the write side, so sealed personal data is revealed (ADR 0008): the keys of
the subjects the rows name are loaded first, then each sealed string opens (or reads `[erased]`).
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import msgspec

from adapters.event_store.mapper import MsgspecMapper
from commands.errors import AggregateNotFound
from domain.aggregate import Aggregate, NotThisKind
from domain.events import DomainEvent, Snapshot

A = TypeVar("A", bound=Aggregate)
log = logging.getLogger(__name__)
NO_LIMIT = 2**31 - 1
# One round trip per load: the newest snapshot at or before the version asked for, then the events after it.
LOAD_WITH_SNAPSHOT = (
    "WITH snap AS (SELECT originator_version, topic, state FROM aiwp_snapshots"
    " WHERE originator_id = $1 AND originator_version <= $2 ORDER BY originator_version DESC LIMIT 1)"
    " SELECT true AS snapshot, originator_version, topic, state FROM snap"
    " UNION ALL SELECT false, originator_version, topic, state FROM aiwp_events"
    " WHERE originator_id = $1 AND originator_version <= $2"
    " AND originator_version > coalesce((SELECT originator_version FROM snap), 0)"
    " ORDER BY snapshot DESC, originator_version"
)
LOAD = (
    "SELECT false AS snapshot, originator_version, topic, state FROM aiwp_events"
    " WHERE originator_id = $1 AND originator_version <= $2 ORDER BY originator_version"
)


class StreamReader:
    def __init__(self, pool: asyncpg.Pool, mapper: MsgspecMapper, *, snapshots: bool = True) -> None:
        self._pool = pool
        self._mapper = mapper
        self._snapshots = snapshots

    async def get(self, kind: type[A], aggregate_id: UUID, version: int | None = None) -> A:
        upto = NO_LIMIT if version is None else version
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(LOAD_WITH_SNAPSHOT if self._snapshots else LOAD, aggregate_id, upto)
            snapshot = None
            if rows and rows[0]["snapshot"]:
                snapshot, rows = self._decode(aggregate_id, rows[0]), rows[1:]
            events: list[DomainEvent | Snapshot] = await self.revealed(aggregate_id, rows)
            try:
                if snapshot is not None and not isinstance(snapshot, Snapshot):
                    raise msgspec.ValidationError("not a snapshot")
                state = kind.project([snapshot, *events] if snapshot is not None else events)
            except msgspec.ValidationError:
                log.warning("snapshot of %s does not fit %s; replaying the stream", aggregate_id, kind.__name__)
                state = await self._replayed(conn, kind, aggregate_id, upto)
            except NotThisKind:
                state = None
        if state is None:
            raise AggregateNotFound(f"{kind.__name__} {aggregate_id} not found")
        return state

    async def _replayed(self, conn: Any, kind: type[A], aggregate_id: UUID, upto: int) -> A | None:
        rows = await conn.fetch(
            "SELECT originator_version, topic, state FROM aiwp_events"
            " WHERE originator_id = $1 AND originator_version <= $2 ORDER BY originator_version",
            aggregate_id,
            upto,
        )
        return kind.project(await self.revealed(aggregate_id, rows))

    async def revealed(self, aggregate_id: UUID, rows: list[Any]) -> list[Any]:
        """The rows' events with their sealed strings opened, after loading the keys they need."""
        mapper = self._mapper
        if mapper.keyring is None:
            return [self._decode(aggregate_id, row) for row in rows]
        plain = [
            (row, mapper.plaintext(row["topic"], row["state"], aggregate_id, row["originator_version"])) for row in rows
        ]
        needed = {pair for _, state in plain for pair in mapper.sealed_subjects(state)}
        if needed:
            await mapper.keyring.load(needed)
        return [
            mapper.decode_revealed(row["topic"], state, aggregate_id, row["originator_version"]) for row, state in plain
        ]

    def _decode(self, aggregate_id: UUID, row: Any) -> Any:
        return self._mapper.decode(row["topic"], row["state"], aggregate_id, row["originator_version"])
