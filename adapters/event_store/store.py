"""The platform's event store: async loads and group-committed saves over the eventsourcing library."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast
from uuid import UUID

import asyncpg
import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql

from adapters.event_store.application import StoreApplication
from adapters.event_store.group_commit import GroupCommitter
from adapters.event_store.mapper import MsgspecMapper
from adapters.event_store.stream_reader import StreamReader
from adapters.subject_keys import KeyRing
from commands.errors import AggregateNotFound, ConcurrencyError, SubjectErased
from domain.aggregate import Aggregate, NotThisKind
from domain.events import DomainEvent, Snapshot
from domain.personal import personal_plan

A = TypeVar("A", bound=Aggregate)
log = logging.getLogger(__name__)

Change = tuple[Aggregate, Sequence[DomainEvent]]


class EventSourcedStore:
    """Implements `commands.ports.EventStore` on a `StoreApplication`."""

    def __init__(
        self,
        app: StoreApplication,
        *,
        snapshot_interval: int = 100,
        max_batch: int = 64,
        max_wait: float = 0.0,
        read_threads: int = 12,
        commits_in_flight: int = 2,
    ) -> None:
        self.app = app
        self._reader: StreamReader | None = None
        self._snapshot_interval = snapshot_interval
        self._readers = ThreadPoolExecutor(read_threads, thread_name_prefix="store-read")
        self._writer = ThreadPoolExecutor(commits_in_flight, thread_name_prefix="store-write")
        self._committer: GroupCommitter[Change] = GroupCommitter(
            self._write, self._writer, max_batch=max_batch, max_wait=max_wait, in_flight=commits_in_flight
        )

    def seal_with(self, keyring: KeyRing) -> None:
        """Events about a data subject are sealed with its key from now on, and revealed when loaded (ADR 0008)."""
        mapper = self.app.mapper
        assert isinstance(mapper, MsgspecMapper)
        mapper.keyring = keyring

    @property
    def keyring(self) -> KeyRing | None:
        mapper = self.app.mapper
        return mapper.keyring if isinstance(mapper, MsgspecMapper) else None

    def read_with(self, pool: asyncpg.Pool) -> None:
        """Loads go through asyncpg on the event loop from now on (PostgreSQL only; see `StreamReader`)."""
        mapper = self.app.mapper
        assert isinstance(mapper, MsgspecMapper)
        self._reader = StreamReader(pool, mapper, snapshots=self.app.snapshots is not None)

    async def get(self, kind: type[A], aggregate_id: UUID, *, version: int | None = None) -> A:
        if self._reader is not None:
            return await self._reader.get(kind, aggregate_id, version)
        loop = asyncio.get_running_loop()
        if self.keyring is not None:
            return await self._get_revealed(kind, aggregate_id, version)
        return await loop.run_in_executor(self._readers, self._get, kind, aggregate_id, version)

    async def save(self, aggregate: Aggregate, events: Sequence[DomainEvent]) -> int:
        if not events:
            raise ValueError("a save needs at least one event")
        # The mapper seals synchronously in the writer thread: the keys it needs are read (or made) here.
        for event in events:
            subject = event.metadata.subject
            if subject and personal_plan(type(event)) is not None:
                keyring = self.keyring
                if keyring is not None:
                    await keyring.ensure(event.metadata.tenant_id, subject)
        return await self._committer.submit((aggregate, events))

    async def position_of(self, aggregate_id: UUID, version: int) -> int:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._position_of, aggregate_id, version)

    async def close(self) -> None:
        await self._committer.close()
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self.app.close()

    async def _get_revealed(self, kind: type[A], aggregate_id: UUID, version: int | None) -> A:
        """A load without asyncpg (the in-memory store) that opens sealed strings: the whole stream, no snapshot."""
        mapper = self.app.mapper
        assert isinstance(mapper, MsgspecMapper)
        assert mapper.keyring is not None
        loop = asyncio.get_running_loop()
        stored = await loop.run_in_executor(
            self._readers, lambda: self.app.recorder.select_events(aggregate_id, lte=version)
        )
        plain = [(s, mapper.plaintext(s.topic, s.state, aggregate_id, s.originator_version)) for s in stored]
        needed = {pair for _, payload in plain for pair in mapper.sealed_subjects(payload)}
        await mapper.keyring.load(needed)
        events = [mapper.decode_revealed(s.topic, p, aggregate_id, s.originator_version) for s, p in plain]
        try:
            aggregate = kind.project(events)
        except NotThisKind:
            aggregate = None
        if aggregate is None:
            raise AggregateNotFound(f"{kind.__name__} {aggregate_id} not found")
        return aggregate

    def events_of(self, aggregate_id: UUID) -> list[Any]:
        """Every stored event of one stream, decoded (blocking; for tools and tests)."""
        return list(self.app.events.get(aggregate_id))

    def _get(self, kind: type[A], aggregate_id: UUID, version: int | None) -> A:
        def project(initial: A | None, events: Any) -> A | None:
            return kind.project(events, initial)

        try:
            try:
                return self.app.repository.get(aggregate_id, version=version, projector_func=project)
            except msgspec.ValidationError:
                # A snapshot taken before the aggregate's fields changed: it is a cache, the events are the truth.
                log.warning("snapshot of %s does not fit %s; replaying the stream", aggregate_id, kind.__name__)
                state = kind.project(cast(Iterable[DomainEvent], self.app.events.get(aggregate_id, lte=version)))
                if state is None:
                    raise AggregateNotFoundError(aggregate_id) from None
                return state
        except (AggregateNotFoundError, NotThisKind):
            raise AggregateNotFound(f"{kind.__name__} {aggregate_id} not found") from None

    def _write(self, changes: Sequence[Change]) -> list[int | BaseException]:
        try:
            positions = self._insert([event for _, events in changes for event in events])
        except IntegrityError:
            if len(changes) == 1:
                return [self._conflict(changes[0])]
            return [self._write_alone(change) for change in changes]
        except SubjectErased as erased:  # erased between `ensure` and this write: only its own save fails
            if len(changes) == 1:
                return [erased]
            return [self._write_alone(change) for change in changes]
        results: list[int | BaseException] = []
        offset = 0
        for change in changes:
            offset += len(change[1])
            results.append(positions[offset - 1])
            self._maybe_snapshot(change)
        return results

    def _write_alone(self, change: Change) -> int | BaseException:
        try:
            position = self._insert(change[1])[-1]
        except IntegrityError:
            return self._conflict(change)
        except SubjectErased as erased:
            return erased
        self._maybe_snapshot(change)
        return position

    def _insert(self, events: Sequence[DomainEvent]) -> list[int]:
        recordings = self.app.events.put(events)
        return [recording.notification.id for recording in recordings]

    @staticmethod
    def _conflict(change: Change) -> ConcurrencyError:
        aggregate, events = change
        return ConcurrencyError(
            f"{type(aggregate).__name__} {aggregate.id} already has version {events[0].originator_version}"
        )

    def _maybe_snapshot(self, change: Change) -> None:
        aggregate, events = change
        interval = self._snapshot_interval
        # A snapshot holds the state in clear: a stream about a data subject is never snapshotted (ADR 0008).
        if self.app.snapshots is None or interval <= 0 or aggregate.subject:
            return
        if aggregate.version // interval > (aggregate.version - len(events)) // interval:
            try:
                self.app.snapshots.put([Snapshot.take(aggregate)])
            except Exception:  # the events are committed; a missing snapshot only costs a longer load
                log.warning("snapshot of %s at version %s failed", aggregate.id, aggregate.version, exc_info=True)

    def _position_of(self, aggregate_id: UUID, version: int) -> int:
        recorder = self.app.recorder
        if isinstance(recorder, PostgresApplicationRecorder):
            query = sql.SQL(
                "SELECT notification_id FROM {schema}.{table} WHERE originator_id = %s AND originator_version = %s"
            ).format(
                schema=sql.Identifier(recorder.datastore.schema or "public"),
                table=sql.Identifier(recorder.events_table_name),
            )
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(query, (aggregate_id, version))
                row = cursor.fetchone()
            if row is not None:
                return int(row["notification_id"])
        elif isinstance(recorder, POPOApplicationRecorder):
            index = recorder._stored_events_index.get(str(aggregate_id), {}).get(version)
            if index is not None:
                return index + 1
        raise AggregateNotFound(f"stream {aggregate_id} has no version {version}")
