"""The audit trail refuses every change: to the platform's role by privilege, to its owner by trigger."""

from __future__ import annotations

import asyncpg
import pytest

from ops.bootstrap import Platform
from tests.workload import Workload

pytestmark = pytest.mark.integration

CHANGES = [
    "UPDATE audit_events SET actor = 'mallory'",
    "DELETE FROM audit_events WHERE position = (SELECT min(position) FROM audit_events)",
    "TRUNCATE audit_events",
]


async def audited(platform: Platform) -> None:
    workload = Workload(platform.store)
    await workload.scenario()
    await platform.projectors["audit_events"].catch_up()


@pytest.mark.parametrize("statement", CHANGES)
async def test_the_platform_role_cannot_change_the_trail(platform: Platform, statement: str) -> None:
    await audited(platform)
    async with platform.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL ROLE aiwp_app")
        assert await conn.fetchval("SELECT count(*) FROM audit_events") > 0  # it may read
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)


@pytest.mark.parametrize("statement", CHANGES)
async def test_even_the_owner_is_refused_by_the_append_only_trigger(platform: Platform, statement: str) -> None:
    await audited(platform)
    async with platform.pool.acquire() as conn:
        before = await conn.fetchval("SELECT count(*) FROM audit_events")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM audit_events") == before


async def test_a_partition_cannot_be_changed_directly_either(platform: Platform) -> None:
    await audited(platform)
    async with platform.pool.acquire() as conn:
        partition = await conn.fetchval(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'audit_events'::regclass LIMIT 1"
        )
        for statement in (f"TRUNCATE {partition}", f"DELETE FROM {partition}", f"UPDATE {partition} SET actor = 'x'"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)


async def test_the_platform_role_may_append(platform: Platform) -> None:
    await audited(platform)
    async with platform.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL ROLE aiwp_app")
        await conn.execute(
            "INSERT INTO audit_events (position, occurred_at, event_id, stream_id, stream_version, type, context,"
            " tenant_id, actor, correlation_id, causation_id, canonical, prev_hash, hash)"
            " SELECT position + 1000000, occurred_at, event_id, stream_id, stream_version, type, context, tenant_id,"
            " actor, correlation_id, causation_id, canonical, prev_hash, hash FROM audit_events LIMIT 1"
        )
