"""`aiwp audit verify` against tampering by the database's owner: each kind of change is named at its row."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from commands import agents
from commands.errors import ConcurrencyError
from domain.agents.agent import Agent
from ops.bootstrap import Platform, open_platform
from ops.settings import Settings
from tests.ops.audit_chain import as_owner as owner_statements
from tests.strategies import Clock
from tests.workload import Workload

pytestmark = pytest.mark.integration
AIWP = Path(sys.executable).with_name("aiwp")


@pytest.fixture
async def platform(database_url: str, pg_schema: str) -> AsyncIterator[Platform]:
    async with open_platform(Settings(database_url=database_url, database_schema=pg_schema)) as made:
        workload = Workload(made.store, seed=3)
        while workload.commands < 40:
            await workload.scenario()
        # A save that loses a race uses up a position: the log, and so the trail, has a gap.
        clock = Clock()
        created = await agents.register_agent(
            made.store, clock.ctx(), agents.RegisterAgent(name="gap", provider="scripted", model="m")
        )
        first, stale = [await made.store.get(Agent, created.id) for _ in range(2)]
        await made.store.save(first, first.archive(clock.ctx(), reason="first"))
        with pytest.raises(ConcurrencyError):
            await made.store.save(stale, stale.archive(clock.ctx(), reason="second"))
        await workload.scenario()
        await made.projectors["audit_events"].catch_up()
        yield made


def verify(database_url: str, schema: str, *args: str) -> tuple[int, dict[str, Any]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIWP_")}
    environ = clean | {"AIWP_DATABASE_URL": database_url, "AIWP_DATABASE_SCHEMA": schema}
    result = subprocess.run(
        [str(AIWP), "audit", "verify", "--json", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


async def as_owner(platform: Platform, *statements: str) -> None:
    async with platform.pool.acquire() as conn:
        await owner_statements(conn, *statements)


async def positions(platform: Platform) -> list[int]:
    async with platform.pool.acquire() as conn:
        return [r["position"] for r in await conn.fetch("SELECT position FROM audit_events ORDER BY position")]


async def test_an_untouched_trail_verifies(platform: Platform, database_url: str, pg_schema: str) -> None:
    code, verdict = verify(database_url, pg_schema)
    assert code == 0
    assert verdict["ok"] is True
    assert verdict["rows"] == len(await positions(platform))
    part_code, part = verify(database_url, pg_schema, "--from", "10", "--to", "30")
    assert part_code == 0
    assert part["rows"] == len([p for p in await positions(platform) if 10 <= p <= 30])


async def test_a_changed_payload_is_named(platform: Platform, database_url: str, pg_schema: str) -> None:
    target = (await positions(platform))[20]
    await as_owner(
        platform,
        f"UPDATE audit_events SET canonical = replace(convert_from(canonical, 'UTF8'), 'acme', 'acmf')::bytea"
        f" WHERE position = {target}",
    )
    code, verdict = verify(database_url, pg_schema)
    assert (code, verdict["first_bad"]) == (1, target)
    assert "hash is not SHA-256" in verdict["reason"]


async def test_a_changed_column_is_named(platform: Platform, database_url: str, pg_schema: str) -> None:
    target = (await positions(platform))[7]
    await as_owner(platform, f"UPDATE audit_events SET actor = 'mallory' WHERE position = {target}")
    code, verdict = verify(database_url, pg_schema)
    assert (code, verdict["first_bad"]) == (1, target)
    assert "actor column says 'mallory'" in verdict["reason"]


async def test_a_deleted_row_is_named_where_the_chain_breaks(
    platform: Platform, database_url: str, pg_schema: str
) -> None:
    present = await positions(platform)
    await as_owner(platform, f"DELETE FROM audit_events WHERE position = {present[15]}")
    code, verdict = verify(database_url, pg_schema)
    assert (code, verdict["first_bad"]) == (1, present[16])
    assert "missing" in verdict["reason"]


async def test_a_forged_row_with_a_valid_hash_is_named(platform: Platform, database_url: str, pg_schema: str) -> None:
    present = await positions(platform)
    gap = next(p + 1 for p, q in itertools.pairwise(present) if q > p + 1)
    before = max(p for p in present if p < gap)
    async with platform.pool.acquire() as conn:
        model = await conn.fetchrow("SELECT canonical FROM audit_events WHERE position = $1", before)
    assert model is not None
    # A copy of the row before the gap, moved to the gap, chained to it with a correct hash of its own.
    canonical = bytes(model["canonical"]).replace(f'"position":{before}'.encode(), f'"position":{gap}'.encode())
    async with platform.pool.acquire() as conn:
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(
            "INSERT INTO audit_events (position, occurred_at, event_id, stream_id, stream_version, type, context,"
            " tenant_id, actor, correlation_id, causation_id, canonical, prev_hash, hash)"
            " SELECT $1, occurred_at, event_id, stream_id, stream_version, type, context, tenant_id, actor,"
            " correlation_id, causation_id, $2::bytea, hash, sha256(hash || $2::bytea)"
            " FROM audit_events WHERE position = $3",
            gap,
            canonical,
            before,
        )
        await conn.execute("SET session_replication_role = origin")
    code, verdict = verify(database_url, pg_schema)
    assert (code, verdict["first_bad"]) == (1, gap)
    assert "does not belong to the chain" in verdict["reason"]


async def test_two_swapped_rows_are_named(platform: Platform, database_url: str, pg_schema: str) -> None:
    present = await positions(platform)
    a, b = present[10], present[11]
    await as_owner(
        platform,
        f"UPDATE audit_events SET position = -1 WHERE position = {a}",
        f"UPDATE audit_events SET position = {a} WHERE position = {b}",
        f"UPDATE audit_events SET position = {b} WHERE position = -1",
    )
    code, verdict = verify(database_url, pg_schema)
    assert (code, verdict["first_bad"]) == (1, a)
