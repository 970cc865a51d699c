"""A platform on the machine's PostgreSQL, in a schema of the test's own, with the in-process bus."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ops.bootstrap import Platform, open_platform
from ops.settings import Settings
from projections.projection import Connection


@pytest.fixture
async def platform(database_url: str, pg_schema: str) -> AsyncIterator[Platform]:
    settings = Settings(database_url=database_url, database_schema=pg_schema, db_pool_size=6, read_pool_size=6)
    async with open_platform(settings) as made:
        yield made


async def checksum(conn: Connection, table: str) -> tuple[int, str]:
    """Row count and a digest of every row's text, independent of physical order."""
    row = await conn.fetchrow(
        f"SELECT count(*) AS n, coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') AS digest FROM {table} t"
    )
    assert row is not None
    return int(row["n"]), str(row["digest"])


async def checksums(platform: Platform, names: list[str] | None = None) -> dict[str, tuple[int, str]]:
    chosen = names or [n for n in platform.projectors if n != "audit_events"]
    async with platform.pool.acquire() as conn:
        return {
            table: await checksum(conn, table)
            for name in chosen
            for table in platform.projectors[name].projection.tables
        }


async def rebuild(platform: Platform, names: list[str] | None = None) -> None:
    """Empties the read models and replays them from the store (the audit trail is append-only: not here)."""
    chosen = names or [n for n in platform.projectors if n != "audit_events"]
    async with platform.pool.acquire() as conn:
        for name in chosen:
            tables = ", ".join(platform.projectors[name].projection.tables)
            await conn.execute(f"TRUNCATE {tables}")
            await conn.execute("UPDATE projection_positions SET position = 0 WHERE name = $1", name)
    for name in chosen:
        await platform.projectors[name].catch_up()
