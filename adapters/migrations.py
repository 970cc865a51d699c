"""Applies the numbered SQL files of `migrations/` once each, in order, each in its own transaction."""

from __future__ import annotations

import re
from importlib import resources

import asyncpg

from projections.projection import Connection

MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
LOCK_KEY = 0x61697770_6D696772  # "aiwpmigr": one migrator at a time per database


class MigrationError(RuntimeError):
    """A migration that failed; nothing of it was applied."""


def available() -> list[tuple[str, str]]:
    """(version, SQL) of every migration file, in order."""
    files = [f for f in resources.files("migrations").iterdir() if MIGRATION_FILE.match(f.name)]
    return [(f.name.removesuffix(".sql"), f.read_text()) for f in sorted(files, key=lambda f: f.name)]


async def apply_migrations(conn: Connection, migrations: list[tuple[str, str]] | None = None) -> list[str]:
    """Applies what is missing and returns the versions it applied; a failed one leaves no trace."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
    applied: list[str] = []
    for version, sql in available() if migrations is None else migrations:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
            if await conn.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", version):
                continue
            try:
                await conn.execute(sql)
            except asyncpg.PostgresError as error:
                raise MigrationError(f"migration {version} failed and was rolled back: {error}") from error
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
    return applied
