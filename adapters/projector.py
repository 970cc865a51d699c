"""The projector runtime: applies events to one projection, exactly once, in position order.

Rows and the projection's position are written in one transaction, so an event applied twice
changes nothing. A projector that starts behind (new, rebuilt, or fed a gap) reads the event
store itself, in batches, before it takes messages again. A message that keeps failing stalls the
projector — reported in `projection_positions` — instead of being skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from adapters.bus.consumer_loop import StopConsuming
from adapters.bus.port import Binding, EventBus
from adapters.event_store.log_reader import LogReader
from adapters.relay import FILTER_KEY, FILTERS_AT
from domain.codec import decode_event
from domain.envelope import Envelope
from projections.projection import Connection, Projection, Recorded

log = logging.getLogger(__name__)


class ProjectorStalled(StopConsuming):
    """The projector met an event it cannot apply; an operator must look before it goes on."""


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int
    status: str
    error: str
    pending: int  # events in the store it handles and has not applied yet


class Projector:
    def __init__(self, projection: Projection, pool: asyncpg.Pool, reader: LogReader, *, batch_size: int = 500) -> None:
        self.projection = projection
        self._pool = pool
        self._reader = reader
        self._batch_size = batch_size
        topics = projection.topics()
        self._topics = topics
        self._handles = None if topics is None else frozenset(topics)
        # Its queue takes only the events it handles: the relay's chain of those events shows a gap.
        self._filter = projection.filter_id if projection.context is not None else None

    @property
    def name(self) -> str:
        return self.projection.name

    async def ensure_registered(self) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO projection_positions (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", self.name
            )

    async def status(self) -> ProjectionStatus:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT position, status, error FROM projection_positions WHERE name = $1", self.name
            )
            position = await self._settled(conn, int(row["position"]) if row else 0)
            pending = await self._reader.count_after(conn, position, self._topics)
        if row is None:
            return ProjectionStatus(self.name, 0, "running", "", pending)
        return ProjectionStatus(self.name, position, row["status"], row["error"], pending)

    async def catch_up(self) -> int:
        """Applies everything the store has beyond the projection's position; returns the new position."""
        await self.ensure_registered()
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                position = await self._settled(conn, await self._lock(conn))
                batch = await self._reader.read(conn, position, self._batch_size, self._topics)
                await self.projection.apply(conn, batch.events)
                done = batch.caught_up(self._batch_size)
                new_position = batch.head if done else batch.events[-1].position
                await self._advance(conn, new_position)
            if done:
                return new_position

    async def handle(self, envelopes: Sequence[Envelope]) -> None:
        """The live path: applies a batch from the bus; a gap before it is filled from the store first."""
        gap = False
        async with self._pool.acquire() as conn, conn.transaction():
            position = last = await self._lock(conn)
            batch: list[Recorded] = []
            for envelope in sorted(envelopes, key=lambda e: e.position):
                if envelope.position <= last:
                    continue  # already applied: a redelivery, or covered by a catch-up
                if self._filter is None:  # every event comes, through the fanout
                    if envelope.previous_position > last:
                        gap = True
                        break
                    if self._handles is None or envelope.topic in self._handles:
                        batch.append(Recorded(envelope.position, decode_event(envelope.topic, envelope.data)))
                    last = envelope.position
                    continue
                if self._handles is not None and envelope.topic not in self._handles:
                    continue  # through a binding an older version left: passing it would hide a gap before it
                previous = envelope.filter_previous.get(self._filter)
                if previous is None:  # sent by a relay that did not follow this filter yet
                    since = await self._settled(conn, last)
                    gap = await self._reader.has_events_between(conn, since, envelope.position - 1, self._topics)
                else:
                    gap = previous > last
                if gap:
                    break
                batch.append(Recorded(envelope.position, decode_event(envelope.topic, envelope.data)))
                last = envelope.position
            await self.projection.apply(conn, batch)
            if last > position:
                await self._advance(conn, last)
        if gap:
            log.info("%s: gap before position %s; catching up from the store", self.name, last)
            await self.catch_up()

    async def mark_stalled(self, envelope: Envelope | None, error: BaseException) -> None:
        where = f"at position {envelope.position} ({envelope.type})" if envelope else "while catching up"
        message = f"{where}: {type(error).__name__}: {error}"[:2000]
        log.error("projection %s stalled %s", self.name, message)
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE projection_positions SET status = 'stalled', error = $2, updated_at = now() WHERE name = $1",
                self.name,
                message,
            )

    async def resume(self) -> None:
        """Clears a stall, after the cause was fixed; the next catch-up retries the event."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE projection_positions SET status = 'running', error = '', updated_at = now() WHERE name = $1",
                self.name,
            )

    async def wait_for(self, position: int, timeout: float) -> bool:
        """True once every event of this projection up to `position` is applied; False after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            async with self._pool.acquire() as conn:
                current = await conn.fetchval("SELECT position FROM projection_positions WHERE name = $1", self.name)
                current = await self._settled(conn, current or 0)
                if current >= position or not await self._reader.has_events_between(
                    conn, current, position, self._topics
                ):
                    return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.005)

    async def _settled(self, conn: Connection, position: int) -> int:
        return await settled(conn, self.projection, position)

    async def _lock(self, conn: Connection) -> int:
        row = await conn.fetchrow(
            "SELECT position, status FROM projection_positions WHERE name = $1 FOR UPDATE", self.name
        )
        if row is None:
            await conn.execute("INSERT INTO projection_positions (name) VALUES ($1)", self.name)
            return 0
        if row["status"] == "stalled":
            raise ProjectorStalled(f"projection {self.name} is stalled; see `aiwp projections status`")
        return int(row["position"])

    async def _advance(self, conn: Connection, position: int) -> None:
        await conn.execute(
            "UPDATE projection_positions SET position = $2, updated_at = now() WHERE name = $1 AND position < $2",
            self.name,
            position,
        )


async def settled(conn: Connection, projection: Projection, position: int, relay: str = "relay_positions") -> int:
    """How far a projection at `position` has applied everything it handles: up to the relay's position when the
    last event of its filter that the relay published is at or before `position`. Its position moves only when
    one of its events comes, so without this, waiting, catching up and rebuilding would search the log from
    there. `relay`: the (qualified) table of the relay's positions."""
    if projection.context is None:  # every event comes, through the fanout: its position is the relay's
        return position
    row = await conn.fetchrow(
        "SELECT position, (previous ->> $1)::bigint AS last, (previous ->> $2)::bigint AS chains_at"  # noqa: S608
        f" FROM {relay} ORDER BY position DESC LIMIT 1",
        FILTER_KEY + projection.filter_id,
        FILTERS_AT,
    )
    if row is None or row["last"] is None or row["chains_at"] != row["position"]:
        return position  # no chain of its filter, or one a relay of an older version left behind
    return max(position, int(row["position"])) if row["last"] <= position else position


def binding_of(projection: Projection) -> Binding:
    """Its queue, bound to the events it handles (the fanout, for a projection of every context)."""
    return Binding.for_projection(projection.name, projection.context, projection.routing_keys())


async def run_projector(
    projector: Projector,
    bus: EventBus,
    stop: asyncio.Event,
    *,
    prefetch: int = 500,
    max_failures: int = 3,
) -> None:
    """Catches up from the store, then applies what the bus delivers, until `stop` or a stall."""
    binding = binding_of(projector.projection)
    await bus.start([binding])  # the queue exists (and buffers) before the catch-up reads the store
    for attempt in range(1, max_failures + 1):
        try:
            await projector.catch_up()
            break
        except ProjectorStalled as stalled:
            log.error("%s", stalled)
            return
        except Exception as error:
            if attempt == max_failures:
                await projector.mark_stalled(None, error)
                return
            log.warning("%s: catch-up failed (%s); retrying", projector.name, error)
    consumer = await bus.consume(
        binding, projector.handle, prefetch=prefetch, max_failures=max_failures, on_poison=projector.mark_stalled
    )
    stopping = asyncio.ensure_future(stop.wait())
    finished = asyncio.ensure_future(consumer.stopped())
    await asyncio.wait({stopping, finished}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    await consumer.stop()
