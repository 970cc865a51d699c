"""`aiwp audit retention apply`: old months go as whole partitions, the cut is logged, and the trail still verifies
from the cut."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ops.bootstrap import Platform, open_platform
from ops.settings import Settings
from projections.audit_retention import Piece, decide
from tests.ops.audit_chain import aiwp, as_owner, env, load, platform_role, rows

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


def month_of(position: int) -> datetime:
    """Positions 1-100 in January 2020, 101-200 in February 2020, the rest this month."""
    if position <= 100:
        return datetime(2020, 1, 2, tzinfo=UTC)
    if position <= 200:
        return datetime(2020, 2, 2, tzinfo=UTC)
    return NOW.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture
async def platform(database_url: str, pg_schema: str) -> AsyncIterator[Platform]:
    async with open_platform(Settings(database_url=database_url, database_schema=pg_schema)) as made:
        async with made.pool.acquire() as conn:
            await load(conn, rows(300, at=month_of, tenant=lambda p: "acme" if p % 2 else "globex"))
        yield made


async def policies(platform: Platform, *pairs: tuple[str, int]) -> None:
    async with platform.pool.acquire() as conn:
        await conn.executemany("INSERT INTO retention_policies (tenant_id, keep_months) VALUES ($1, $2)", pairs)


async def test_old_partitions_are_dropped_logged_and_the_trail_still_verifies(
    platform: Platform, database_url: str, pg_schema: str
) -> None:
    environ = env(database_url, pg_schema)
    await policies(platform, ("*", 12))
    code, planned, stderr = aiwp("audit", "retention", "apply", "--dry-run", "--json", environ=environ)
    assert code == 0, stderr
    assert [p["partition"] for p in planned["dropped"]] == ["audit_events_2020_01", "audit_events_2020_02"]
    async with platform.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_events") == 300  # a dry run drops nothing
        head_at_cut = bytes(await conn.fetchval("SELECT hash FROM audit_events WHERE position = 200"))
    code, applied, stderr = aiwp("audit", "retention", "apply", "--json", environ=environ)
    assert code == 0, stderr
    assert applied["cut"] == {"last_position": 200, "head": head_at_cut.hex(), "first_kept": 201}
    async with platform.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_events") == 100
        assert await conn.fetchval("SELECT to_regclass('audit_events_2020_01')") is None
        logged = await conn.fetch("SELECT * FROM audit_retention_log ORDER BY cut_id")
    assert [(r["partition_name"], r["rows_dropped"], r["first_position"], r["last_position"]) for r in logged] == [
        ("audit_events_2020_01", 100, 1, 100),
        ("audit_events_2020_02", 100, 101, 200),
    ]
    assert bytes(logged[-1]["last_hash"]) == head_at_cut
    assert logged[-1]["first_kept_position"] == 201
    code, verdict, stderr = aiwp("audit", "verify", "--json", environ=environ)
    assert (code, verdict["ok"], verdict["rows"]) == (0, True, 100), stderr
    assert verdict["retention_cut"] == {"last_position": 200, "head": head_at_cut.hex()}
    # Nothing more is past the policy.
    code, again, _ = aiwp("audit", "retention", "apply", "--json", environ=environ)
    assert (code, again["dropped"]) == (0, [])


async def test_after_the_cut_the_first_row_must_link_to_the_recorded_head(
    platform: Platform, database_url: str, pg_schema: str
) -> None:
    environ = env(database_url, pg_schema)
    await policies(platform, ("*", 12))
    assert aiwp("audit", "retention", "apply", "--json", environ=environ)[0] == 0
    async with platform.pool.acquire() as conn:
        await as_owner(conn, "DELETE FROM audit_events WHERE position = 201")
    code, verdict, _ = aiwp("audit", "verify", "--json", environ=environ)
    assert (code, verdict["first_bad"]) == (1, 202)
    assert "does not start from the chain head recorded at the retention cut" in verdict["reason"]


async def test_a_tenant_without_a_policy_keeps_its_months(
    platform: Platform, database_url: str, pg_schema: str
) -> None:
    await policies(platform, ("acme", 1))
    code, planned, _ = aiwp("audit", "retention", "apply", "--dry-run", "--json", environ=env(database_url, pg_schema))
    assert (code, planned["dropped"]) == (0, [])
    assert "tenant 'globex' has rows in it and no retention policy" in planned["kept"][0]["reason"]


async def test_a_trail_that_does_not_verify_is_not_pruned(
    platform: Platform, database_url: str, pg_schema: str
) -> None:
    await policies(platform, ("*", 12))
    async with platform.pool.acquire() as conn:
        await as_owner(conn, "UPDATE audit_events SET actor = 'mallory' WHERE position = 250")
    code, result, _ = aiwp("audit", "retention", "apply", "--json", environ=env(database_url, pg_schema))
    assert (code, result["ok"]) == (1, False)
    assert "nothing was dropped" in result["problem"]
    async with platform.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_events") == 300


def piece(month: int, first: int, last: int, *tenants: str, year: int = 2020) -> Piece:
    return Piece(
        f"audit_events_{year}_{month:02d}",
        "s",
        datetime(year, month, 1, tzinfo=UTC),
        datetime(year, month + 1, 1, tzinfo=UTC),
        rows=last - first + 1,
        first_position=first,
        last_position=last,
        last_hash=b"h",
        tenants=tenants,
    )


def test_only_the_oldest_run_of_expired_partitions_goes_and_never_a_row_after_a_kept_one() -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    # February is kept (a tenant without a policy): March may not go before it.
    plan = decide([piece(1, 1, 9, "a"), piece(2, 10, 19, "b"), piece(3, 20, 29, "a")], {"a": 1}, now)
    assert [p.name for p in plan.dropped] == ["audit_events_2020_01"]
    # January's last row comes after February's first (times and positions crossed at the month's edge).
    plan = decide([piece(1, 1, 12, "a"), piece(2, 10, 19, "a"), piece(10, 20, 29, "a", year=2026)], {"*": 1}, now)
    assert [p.name for p in plan.dropped] == ["audit_events_2020_01", "audit_events_2020_02"]
    plan = decide([piece(1, 1, 25, "a"), piece(2, 10, 19, "a"), piece(10, 20, 29, "a", year=2026)], {"*": 1}, now)
    assert plan.dropped == []
    assert "come after (by position)" in plan.decisions[0].reason


async def test_a_checkpoint_signed_before_the_cut_still_holds_after_it(
    platform: Platform, database_url: str, pg_schema: str, tmp_path: Path
) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    environ = env(database_url, pg_schema, AIWP_AUDIT_CHECKPOINTS=str(tmp_path), AIWP_AUDIT_SIGNING_KEY=key)
    code, signed, stderr = aiwp("audit", "checkpoint", "--json", environ=environ)
    assert (code, signed["rows"]) == (0, 300), stderr
    await policies(platform, ("*", 12))
    assert aiwp("audit", "retention", "apply", "--json", environ=environ)[0] == 0
    code, verdict, _ = aiwp("audit", "verify", "--json", environ=environ)
    assert (code, verdict["rows"], verdict["checkpoint"]["status"]) == (0, 100, "ok")  # 300 rows, 200 dropped


async def test_the_platform_role_may_not_apply_retention(platform: Platform, database_url: str, pg_schema: str) -> None:
    await policies(platform, ("*", 12))
    with platform_role(database_url) as url:
        code, printed, stderr = aiwp("audit", "retention", "apply", "--json", environ=env(url, pg_schema))
    assert (code, printed) == (2, None)
    assert "run it as the owner of audit_events" in stderr
