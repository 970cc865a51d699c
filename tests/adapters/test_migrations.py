"""Migrations apply once each, in order; a failing one leaves nothing behind."""

from __future__ import annotations

import asyncio

import pytest

from adapters.migrations import MigrationError, apply_migrations, available
from adapters.postgres import connect

pytestmark = pytest.mark.integration


def test_migration_files_are_numbered_without_gaps_or_twins() -> None:
    versions = [version for version, _ in available()]
    numbers = [int(version[:4]) for version in versions]
    assert numbers == list(range(1, len(numbers) + 1))


async def test_migrations_apply_once_and_in_order(database_url: str, pg_schema: str) -> None:
    conn = await connect(database_url, pg_schema)
    try:
        first = await apply_migrations(conn)
        assert first == [version for version, _ in available()]
        assert await apply_migrations(conn) == []
        recorded = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in recorded] == first
    finally:
        await conn.close()


async def test_a_failed_migration_is_rolled_back_whole(database_url: str, pg_schema: str) -> None:
    broken = [
        ("0001_good", "CREATE TABLE good (id int)"),
        ("0002_half", "CREATE TABLE half (id int); INSERT INTO half VALUES (1); SELECT no_such_function()"),
    ]
    conn = await connect(database_url, pg_schema)
    try:
        with pytest.raises(MigrationError, match="0002_half failed and was rolled back"):
            await apply_migrations(conn, broken)
        assert await conn.fetchval("SELECT to_regclass('half')") is None
        assert await conn.fetchval("SELECT to_regclass('good')") is not None
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        assert versions == ["0001_good"]
    finally:
        await conn.close()


async def test_two_migrators_at_once_apply_each_migration_once(database_url: str, pg_schema: str) -> None:
    conns = [await connect(database_url, pg_schema) for _ in range(2)]
    try:
        results = await asyncio.gather(*(apply_migrations(c) for c in conns), return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)], results
        applied = [v for r in results if isinstance(r, list) for v in r]
        assert sorted(applied) == [version for version, _ in available()]
    finally:
        for conn in conns:
            await conn.close()
