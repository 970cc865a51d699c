"""An untouched chain of 1,000,000 rows verifies with exit 0 (the issue's acceptance), in the normal suite."""

from __future__ import annotations

import time

import pytest

from ops.bootstrap import open_platform
from ops.settings import Settings
from tests.ops.audit_chain import aiwp, env, load, rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MILLION = 1_000_000


async def test_an_untouched_chain_of_a_million_rows_verifies(database_url: str, pg_schema: str) -> None:
    async with open_platform(Settings(database_url=database_url, database_schema=pg_schema)) as platform:
        started = time.perf_counter()
        async with platform.pool.acquire() as conn:
            assert await load(conn, rows(MILLION)) == MILLION
            await conn.execute("ANALYZE audit_events")
        loaded = time.perf_counter() - started
    started = time.perf_counter()
    code, verdict, stderr = aiwp("audit", "verify", "--json", environ=env(database_url, pg_schema), timeout=300)
    verified = time.perf_counter() - started
    assert code == 0, stderr
    assert (verdict["ok"], verdict["rows"], verdict["last"]) == (True, MILLION, MILLION)
    print(f"1,000,000 rows: built and loaded in {loaded:.1f} s, verified in {verified:.1f} s")
