"""The composition root: settings in, a running platform out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

from adapters.embedded_postgres import EmbeddedPostgres
from adapters.event_store.application import StoreApplication, postgres_env
from adapters.event_store.store import EventSourcedStore
from domain.aggregate import CommandContext
from ops.settings import Settings


@dataclass(frozen=True, kw_only=True)
class Platform:
    """Everything a process of the platform shares."""

    settings: Settings
    database_url: str
    store: EventSourcedStore

    def context(
        self, *, tenant_id: str, actor: str, correlation_id: UUID | None = None, causation_id: UUID | None = None
    ) -> CommandContext:
        """A command context stamped with the wall clock; the only place the write side reads the time."""
        correlation = correlation_id or uuid4()
        return CommandContext(
            at=datetime.now(UTC),
            tenant_id=tenant_id,
            actor=actor,
            correlation_id=correlation,
            causation_id=causation_id or correlation,
        )


def build_store(settings: Settings, database_url: str, *, schema: str = "") -> EventSourcedStore:
    """The event store on one database, configured from the settings."""
    app = StoreApplication(
        env=postgres_env(database_url, schema=schema, pool_size=settings.db_pool_size, cipher_key=settings.cipher_key)
    )
    return EventSourcedStore(
        app,
        snapshot_interval=settings.snapshot_interval,
        max_batch=settings.group_commit_max_batch,
        max_wait=settings.group_commit_max_wait_ms / 1000,
        read_threads=max(1, settings.db_pool_size - 1),
    )


@asynccontextmanager
async def open_platform(settings: Settings) -> AsyncIterator[Platform]:
    """Starts what the settings ask for (an embedded PostgreSQL when no URL is set) and stops it on exit."""
    embedded: EmbeddedPostgres | None = None
    database_url = settings.database_url
    if database_url is None:
        embedded = EmbeddedPostgres(Path(settings.data_dir) / "pgdata")
        database_url = embedded.url
    try:
        store = build_store(settings, database_url)
        try:
            yield Platform(settings=settings, database_url=database_url, store=store)
        finally:
            await store.close()
    finally:
        if embedded is not None:
            embedded.stop()
