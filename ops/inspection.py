"""Read-only access to the event store for the forensic commands: no migration, no broker, no LLM."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from adapters.embedded_postgres import EmbeddedPostgres
from adapters.event_store.log_reader import LogReader
from adapters.event_store.mapper import MsgspecMapper, store_mapper
from adapters.postgres import create_pool
from ops.settings import Settings


class NoEventStore(Exception):
    """There is no event store where the settings point."""


@dataclass(frozen=True)
class Log:
    pool: asyncpg.Pool
    reader: LogReader
    url: str  # for a command that needs a connection of its own (a rebuild's)
    schema: str
    cipher_key: str | None


def mapper_of(settings: Settings) -> MsgspecMapper:
    """The store's mapper, with its cipher when the store has a key: events read as they were written."""
    return store_mapper(settings.cipher_key)


@contextmanager
def database_of(settings: Settings) -> Iterator[str]:
    """The URL of the settings' database: theirs, or the embedded one, started for the block."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    if not (Path(settings.data_dir) / "pgdata").exists():
        raise NoEventStore(f"no embedded event store in {settings.data_dir} (run `aiwp demo` or set AIWP_DATABASE_URL)")
    embedded = EmbeddedPostgres(Path(settings.data_dir) / "pgdata")
    try:
        yield embedded.url
    finally:
        embedded.stop()


@asynccontextmanager
async def open_log(settings: Settings) -> AsyncIterator[Log]:
    with database_of(settings) as url:
        pool = await create_pool(url, settings.database_schema, size=2)
        try:
            async with pool.acquire() as conn:
                if await conn.fetchval("SELECT to_regclass('aiwp_events')") is None:
                    raise NoEventStore(f"no event store in schema {settings.database_schema!r}")
            yield Log(pool, LogReader(mapper_of(settings)), url, settings.database_schema, settings.cipher_key)
        finally:
            await pool.close()
