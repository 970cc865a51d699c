"""asyncpg pools for the read side: one schema on the search path, JSON columns as Python values."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

_encoder = msgspec.json.Encoder(decimal_format="string")


async def _setup(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind,
            encoder=lambda value: _encoder.encode(value).decode(),
            decoder=msgspec.json.decode,
            schema="pg_catalog",
        )


async def _keep(conn: asyncpg.Connection) -> None:
    """No reset on release: these connections only read and write rows, they keep no session state
    (asyncpg's default reset is a round trip on every release)."""


async def create_pool(database_url: str, schema: str, *, size: int = 10, **options: Any) -> asyncpg.Pool:
    """A pool whose connections see `schema` first."""
    pool = await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=size,
        server_settings={"search_path": f'"{schema}", public'},
        init=_setup,
        reset=_keep,
        **options,
    )
    assert pool is not None
    return pool


async def connect(database_url: str, schema: str, *before: str) -> asyncpg.Connection:
    """One connection with the same settings as the pools (for listeners and locks); `before`: schemas searched
    ahead of `schema` (a rebuild's shadow tables)."""
    path = ", ".join(f'"{name}"' for name in (*before, schema))
    conn = await asyncpg.connect(database_url, server_settings={"search_path": f"{path}, public"})
    await _setup(conn)
    return conn
