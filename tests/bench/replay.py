"""The replay tools: `audit verify` beside reading and decoding the store's log alone.

    RESULT reference_log_decode   events/s, reading and decoding the notification log (the reference)
    RESULT rebuild_all            events/s, `aiwp replay projection --all`'s one pass over the log into shadow tables
    RATIO  rebuild_all            rate / (0.3 x the reference) (target >= 1)
    RESULT audit_verify           rows/s, `aiwp audit verify`'s walk of the hash chain
    RATIO  audit_verify           rate / 50,000 rows/s (target >= 1)
Run: `make bench` (or `python -m tests.bench.replay`). Uses the machine's PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time

from adapters.projection_rebuild import ShadowRebuild
from ops.bootstrap import Platform
from projections.audit_verification import audit_rows, verify
from projections.catalog import PROJECTIONS
from tests.bench.common import DATABASE_URL, bench_platform, scratch_schema
from tests.workload import Workload

EVENTS = 40_000


async def fill(platform: Platform) -> int:
    workload = Workload(platform.store, seed=7)
    head = 0
    while head < EVENTS:
        await asyncio.gather(*(workload.scenario() for _ in range(8)))
        async with platform.pool.acquire() as conn:
            head = await platform.reader.head(conn)
    await platform.projectors["audit_events"].catch_up()
    return head


async def decode_rate(platform: Platform) -> float:
    async with platform.pool.acquire() as conn:
        started, after, count = time.perf_counter(), 0, 0
        while True:
            batch = await platform.reader.read(conn, after, 5_000)
            count += len(batch.events)
            if batch.caught_up(5_000):
                break
            after = batch.events[-1].position
        return count / (time.perf_counter() - started)


async def verify_rate(platform: Platform) -> float:
    async with platform.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        started = time.perf_counter()
        verdict = await verify(audit_rows(conn, 0, None), first=True)
        elapsed = time.perf_counter() - started
    if not verdict.ok:
        raise RuntimeError(f"the chain does not verify at {verdict.first_bad}: {verdict.reason}")
    return verdict.rows / elapsed


async def rebuild_rate(platform: Platform, schema: str) -> float:
    async with ShadowRebuild.open(DATABASE_URL, schema, list(PROJECTIONS.values())) as rebuild:
        await rebuild.prepare()
        started = time.perf_counter()
        await rebuild.fill()
        await rebuild.index()
        elapsed = time.perf_counter() - started
        await rebuild.drop()
    return rebuild.applied / elapsed


async def main() -> None:
    with scratch_schema() as schema:
        async with bench_platform(schema, None) as platform:
            await fill(platform)
            reference = await decode_rate(platform)
            rebuilt = await rebuild_rate(platform, schema)
            rate = await verify_rate(platform)
    print(f"RESULT reference_log_decode {reference:.0f} events/s")
    print(f"RESULT rebuild_all {rebuilt:.0f} events/s")
    print(f"RATIO rebuild_all {rebuilt / (0.3 * reference):.2f}")
    print(f"RESULT audit_verify {rate:.0f} rows/s")
    print(f"RATIO audit_verify {rate / 50_000:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
