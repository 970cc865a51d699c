"""The relay: publishes the event store's log to the bus, in position order, at least once.

One relay is active per event store, database and schema (a PostgreSQL advisory lock held on its own
connection); others wait and take over when its connection dies. It reads after its last confirmed position, publishes
a batch with publisher confirms, and records the new position only after every message of the
batch is confirmed. It sleeps on the store's NOTIFY (with a periodic poll as a backstop) instead of
polling in a tight loop. Any failure — broker or database — ends the run; `run_forever` starts it
again from the recorded position, so nothing is lost or reordered (a consumer skips what it has).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import asyncpg
import msgspec

from adapters.bus.port import EventBus
from adapters.event_store.log_reader import LogReader
from domain.catalog import aggregate_of, context_of
from domain.codec import encode_event, topic_of
from domain.envelope import Envelope, event_id_of
from projections.projection import Recorded

log = logging.getLogger(__name__)
LOCK_CLASS = 0x61697770  # "aiwp"; the second key is the schema's hash: one relay per event store
POLL_SECONDS = 1.0


FILTER_KEY = "filter:"  # how a filter's chain is kept among the relay's previous positions
# The position the filter chains were saved at: a relay of an older version saves them back unchanged while
# it moves on, so chains saved at another position than the relay's are stale.
FILTERS_AT = "filters_at"


class Chains:
    """What each published event points back to, so that a consumer can tell it missed something.

    The event published just before it (for the fanout's consumers), the one before it in its context, and
    for each filter that takes it (a projection's queue, bound to the events it handles) the one before it
    in that filter. A filter the relay has no chain for (met after it had published, or saved stale) is
    started at the relay's position (`know`).
    """

    def __init__(
        self, filters: Mapping[str, Iterable[str]], position: int = 0, previous: Mapping[str, int] | None = None
    ) -> None:
        previous = previous or {}
        self.position = position
        self.previous = {
            key: value for key, value in previous.items() if not key.startswith(FILTER_KEY) and key != FILTERS_AT
        }
        if previous.get(FILTERS_AT) == position:
            self.previous |= {FILTER_KEY + f: previous[FILTER_KEY + f] for f in filters if FILTER_KEY + f in previous}
        if position == 0:  # nothing was published: every chain starts here
            self.previous |= {FILTER_KEY + f: 0 for f in filters}
        self.previous[FILTERS_AT] = position
        self.filters = {name: sorted(topics) for name, topics in filters.items()}
        self._filters_of: dict[str, list[str]] = {}
        for name, topics in self.filters.items():
            for topic in topics:
                self._filters_of.setdefault(topic, []).append(FILTER_KEY + name)

    def unknown(self) -> list[str]:
        """The filters whose chain it does not know (met after it had published, or saved stale)."""
        return [name for name in self.filters if FILTER_KEY + name not in self.previous]

    def know(self, name: str, last: int) -> None:
        """Starts a filter's chain at `last`, at or after the filter's last event. Past that event is safe, never
        before it: the filter's next event then names `last`, and a projector that has applied less than that
        catches up from the store once, as after any gap (one that moved with its context is already there)."""
        self.previous[FILTER_KEY + name] = last

    def envelope(self, recorded: Recorded) -> Envelope:
        cls = type(recorded.event)
        context = context_of(cls)
        keys = self._filters_of.get(topic_of(cls), ())
        made = envelope_of(
            recorded,
            self.position,
            self.previous.get(context, 0),
            {key[len(FILTER_KEY) :]: self.previous[key] for key in keys if key in self.previous},
        )
        self.position = self.previous[context] = self.previous[FILTERS_AT] = recorded.position
        for key in keys:
            self.previous[key] = recorded.position
        return made


def envelope_of(
    recorded: Recorded, previous: int, context_previous: int, filter_previous: dict[str, int] | None = None
) -> Envelope:
    position, event = recorded
    cls = type(event)
    metadata = event.metadata
    return Envelope(
        event_id=event_id_of(event.originator_id, event.originator_version),
        position=position,
        previous_position=previous,
        context_previous_position=context_previous,
        filter_previous=filter_previous or {},
        stream_id=event.originator_id,
        stream_version=event.originator_version,
        aggregate=aggregate_of(cls).__name__,
        type=cls.__name__,
        topic=topic_of(cls),
        context=context_of(cls),
        schema_version=getattr(cls, "class_version", 1),
        occurred_at=event.timestamp,
        tenant_id=metadata.tenant_id,
        actor=metadata.actor,
        correlation_id=metadata.correlation_id,
        causation_id=metadata.causation_id,
        traceparent=metadata.traceparent,
        data=msgspec.Raw(encode_event(event)),
    )


class Relay:
    def __init__(
        self,
        connect: Callable[[], Any],
        reader: LogReader,
        bus: EventBus,
        *,
        name: str = "relay",
        batch_size: int = 500,
        channel: str = "aiwp_events",
        filters: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self._connect = connect
        self._filters = filters or {}
        self._reader = reader
        self._bus = bus
        self.name = name
        self._batch_size = batch_size
        self._channel = channel
        self.active = asyncio.Event()
        self.published = 0

    async def run_forever(self, stop: asyncio.Event, *, backoff: float = 1.0) -> None:
        """Runs until `stop` is set, restarting after any failure."""
        while not stop.is_set():
            try:
                await self.run(stop)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, RuntimeError) as error:
                log.warning("relay stopped: %s; restarting in %.1fs", error, backoff)
            except Exception:
                log.exception("relay failed; restarting in %.1fs", backoff)
            self.active.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)

    async def run(self, stop: asyncio.Event) -> None:
        conn: asyncpg.Connection = await self._connect()
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext(current_schema()))", LOCK_CLASS):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), POLL_SECONDS)
                if stop.is_set():
                    return
            self.active.set()
            notified = asyncio.Event()
            await conn.add_listener(self._channel, lambda *_: notified.set())
            chains = Chains(self._filters, *await self._load(conn))
            for name in chains.unknown():  # a new or changed projection, or the first start with filters
                chains.know(name, chains.position)
                log.info("relay: filter %s starts its chain at position %s", name, chains.position)
            while not stop.is_set():
                notified.clear()
                batch = await self._reader.read(conn, chains.position, self._batch_size)
                if batch.events:
                    envelopes = [chains.envelope(recorded) for recorded in batch.events]
                    await self._bus.publish(envelopes)
                    await self._save(conn, chains.position, chains.previous)
                    self.published += len(envelopes)
                if batch.caught_up(self._batch_size):
                    waiters = {asyncio.ensure_future(notified.wait()), asyncio.ensure_future(stop.wait())}
                    _, _pending = await asyncio.wait(waiters, timeout=POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
                    for waiter in waiters:
                        waiter.cancel()
        finally:
            self.active.clear()
            await conn.close()

    async def _load(self, conn: asyncpg.Connection) -> tuple[int, dict[str, int]]:
        row = await conn.fetchrow("SELECT position, previous FROM relay_positions WHERE name = $1", self.name)
        if row is None:
            return 0, {}
        return int(row["position"]), {key: int(value) for key, value in row["previous"].items()}

    async def _save(self, conn: asyncpg.Connection, position: int, previous: dict[str, int]) -> None:
        await conn.execute(
            "INSERT INTO relay_positions (name, position, previous) VALUES ($1, $2, $3)"
            " ON CONFLICT (name) DO UPDATE SET position = excluded.position, previous = excluded.previous,"
            " updated_at = now()",
            self.name,
            position,
            previous,
        )
