"""What a projection is: the events it handles, the rows each one writes, the tables it owns.

A handler is a pure function of (position, event) that returns writes — SQL with arguments. The
runtime applies the writes of a batch in one transaction together with the projection's position,
grouping consecutive writes of the same statement into one `executemany`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from domain.codec import topic_of
from domain.events import DomainEvent

# A connection of ours or one borrowed from a pool: queries take either.
Connection = asyncpg.Connection | PoolConnectionProxy


class Write(NamedTuple):
    sql: str
    args: tuple[Any, ...]


class Recorded(NamedTuple):
    """One event as read from the log: its global position and the decoded event."""

    position: int
    event: DomainEvent


Handler = Callable[[int, Any], list[Write]]


@dataclass(frozen=True)
class Projection:
    """A read model: `context` names the exchange it consumes (None: every context, via `system.events`)."""

    name: str
    context: str | None
    tables: tuple[str, ...]
    handlers: Mapping[type[DomainEvent], Handler]

    def topics(self) -> list[str] | None:
        """The topics of the events it handles; None: every event."""
        return sorted(topic_of(cls) for cls in self.handlers)

    def writes(self, position: int, event: DomainEvent) -> list[Write]:
        handler = self.handlers.get(type(event))
        return handler(position, event) if handler is not None else []

    async def apply(self, conn: Connection, batch: Sequence[Recorded]) -> None:
        """Writes the rows of a batch of events (inside the caller's transaction)."""
        sql: str | None = None
        rows: list[tuple[Any, ...]] = []
        for position, event in batch:
            for write in self.writes(position, event):
                if write.sql != sql:
                    await flush(conn, sql, rows)
                    sql, rows = write.sql, []
                rows.append(write.args)
        await flush(conn, sql, rows)


async def flush(conn: Connection, sql: str | None, rows: list[tuple[Any, ...]]) -> None:
    if sql is None or not rows:
        return
    if len(rows) == 1:
        await conn.execute(sql, *rows[0])
    else:
        await conn.executemany(sql, rows)


def as_dicts(records: Sequence[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(record) for record in records]
