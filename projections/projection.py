"""What a projection is: the events it handles, the rows each one writes, the tables it owns.

A handler is a pure function of (position, event) that returns writes — SQL with arguments. The
runtime applies the writes of a batch in one transaction together with the projection's position.

The writes of one stream keep their order; writes of different streams may be reordered, so they
must commute (touch different rows, or add to shared totals). That lets a batch go out in "waves":
wave n holds the n-th write of each stream, and each wave sends one `executemany` per statement —
a few round trips per batch instead of one per event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from domain.catalog import routing_key_of
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

    @cached_property
    def filter_id(self) -> str:
        """Names the set of events it handles; the relay follows each such set (`Envelope.filter_previous`)."""
        topics = ",".join(sorted(topic_of(cls) for cls in self.handlers))
        return hashlib.sha1(topics.encode(), usedforsecurity=False).hexdigest()[:12]

    def routing_keys(self) -> tuple[str, ...]:
        """The routing keys of the events it handles: its queue is bound with these alone."""
        return tuple(sorted(routing_key_of(cls) for cls in self.handlers))

    def writes(self, position: int, event: DomainEvent) -> list[Write]:
        handler = self.handlers.get(type(event))
        return handler(position, event) if handler is not None else []

    async def apply(self, conn: Connection, batch: Sequence[Recorded]) -> None:
        """Writes the rows of a batch of events (inside the caller's transaction)."""
        keyed = ((event.originator_id, self.writes(position, event)) for position, event in batch)
        for wave in waves(keyed):
            for sql, rows in wave.items():
                if len(rows) == 1:
                    await conn.execute(sql, *rows[0])
                else:
                    await conn.executemany(sql, rows)


Wave = dict[str, list[tuple[Any, ...]]]


def waves(writes_by_stream: Iterable[tuple[Hashable, list[Write]]]) -> list[Wave]:
    """The n-th write of each stream goes in wave n; within a wave, writes are grouped by statement."""
    made: list[Wave] = []
    next_wave: dict[Hashable, int] = {}
    for stream, writes in writes_by_stream:
        for write in writes:
            index = next_wave.get(stream, 0)
            next_wave[stream] = index + 1
            if index == len(made):
                made.append({})
            made[index].setdefault(write.sql, []).append(write.args)
    return made


def as_dicts(records: Sequence[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(record) for record in records]
