"""Reads the store's notification log with asyncpg: batches of (position, event), in position order.

Commits happen in position order (the insert takes the table lock), so the committed positions are
always a prefix of the log, with gaps only where an insert rolled back. One statement reads a batch
and the log's head in the same snapshot, so a reader that got fewer rows than it asked for knows it
has seen everything up to that head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from adapters.event_store.mapper import MsgspecMapper
from projections.projection import Connection, Recorded


class LogBatch(NamedTuple):
    events: list[Recorded]
    head: int  # the highest position committed when the batch was read

    def caught_up(self, limit: int) -> bool:
        return len(self.events) < limit


class LogReader:
    """Decodes with the writer's mapper (same cipher), so the read side sees what the write side stored."""

    def __init__(self, mapper: MsgspecMapper, table: str = "aiwp_events") -> None:
        self._mapper = mapper
        self._table = table

    async def read(
        self, conn: Connection, after: int, limit: int, topics: Sequence[str] | None = None, *, upto: int | None = None
    ) -> LogBatch:
        """The next events after `after` (up to position `upto` when given: the head then counts as `upto`)."""
        rows = await conn.fetch(
            f"WITH head AS (SELECT least(coalesce(max(notification_id), 0), $4::bigint) AS position"  # noqa: S608
            f" FROM {self._table})"
            f" SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state, head.position AS head"
            f" FROM head LEFT JOIN {self._table} e ON e.notification_id > $1 AND e.notification_id <= head.position"
            " AND ($3::text[] IS NULL OR e.topic = ANY($3)) ORDER BY e.notification_id LIMIT $2",
            after,
            limit,
            list(topics) if topics is not None else None,
            upto,
        )
        head = int(rows[0]["head"]) if rows else after
        events = [
            Recorded(row["notification_id"], self.decode(row)) for row in rows if row["notification_id"] is not None
        ]
        return LogBatch(events, max(head, after))

    async def has_events_between(self, conn: Connection, after: int, until: int, topics: Sequence[str] | None) -> bool:
        """Whether any event of those topics lies in (after, until]."""
        found = await conn.fetchval(
            f"SELECT 1 FROM {self._table} WHERE notification_id > $1 AND notification_id <= $2"  # noqa: S608
            " AND ($3::text[] IS NULL OR topic = ANY($3)) LIMIT 1",
            after,
            until,
            list(topics) if topics is not None else None,
        )
        return found is not None

    async def count_after(self, conn: Connection, after: int, topics: Sequence[str] | None) -> int:
        """How many events of those topics lie beyond `after`."""
        value = await conn.fetchval(
            f"SELECT count(*) FROM {self._table} WHERE notification_id > $1"  # noqa: S608
            " AND ($2::text[] IS NULL OR topic = ANY($2))",
            after,
            list(topics) if topics is not None else None,
        )
        return int(value)

    async def head(self, conn: Connection) -> int:
        value = await conn.fetchval(f"SELECT coalesce(max(notification_id), 0) FROM {self._table}")  # noqa: S608
        return int(value)

    def decode(self, row: Any) -> Any:
        return self._mapper.decode(row["topic"], row["state"], row["originator_id"], row["originator_version"])

    async def stream(self, conn: Connection, stream_id: Any) -> list[Recorded]:
        """Every event of one stream, in version order, with its position in the log."""
        rows = await conn.fetch(
            f"SELECT notification_id, originator_id, originator_version, topic, state FROM {self._table}"  # noqa: S608
            " WHERE originator_id = $1 ORDER BY originator_version",
            stream_id,
        )
        return [Recorded(row["notification_id"], self.decode(row)) for row in rows]

    async def at(self, conn: Connection, position: int) -> Recorded | None:
        """The event at one position of the log, if there is one."""
        row = await conn.fetchrow(
            f"SELECT notification_id, originator_id, originator_version, topic, state FROM {self._table}"  # noqa: S608
            " WHERE notification_id = $1",
            position,
        )
        return Recorded(row["notification_id"], self.decode(row)) if row is not None else None

    async def last(self, conn: Connection, count: int) -> int:
        """The position just before the last `count` events of the log."""
        value = await conn.fetchval(
            f"SELECT coalesce(min(notification_id) - 1, 0) FROM (SELECT notification_id FROM {self._table}"  # noqa: S608
            " ORDER BY notification_id DESC LIMIT $1) AS tail",
            count,
        )
        return int(value)

    async def unended(self, conn: Connection, begun: Sequence[str], ended: Sequence[str]) -> list[Recorded]:
        """The first event of each stream that has an event of a `begun` topic and none of an `ended` one
        (a scan of the log: for the embedded store's restart, not for a hot path)."""
        rows = await conn.fetch(
            f"SELECT notification_id, originator_id, originator_version, topic, state FROM {self._table} b"  # noqa: S608
            " WHERE b.topic = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM"
            f" {self._table} e WHERE e.originator_id = b.originator_id AND e.topic = ANY($2::text[]))"
            " ORDER BY notification_id",
            list(begun),
            list(ended),
        )
        return [Recorded(row["notification_id"], self.decode(row)) for row in rows]
