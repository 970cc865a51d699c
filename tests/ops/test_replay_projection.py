"""`aiwp replay projection`: rebuilds into shadow tables, compared with the live ones, swapped in, or as of a moment."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.projection_rebuild import ShadowRebuild
from commands import agents
from ops.bootstrap import Platform, open_platform, running_workers
from ops.settings import Settings
from projections.catalog import PROJECTIONS
from tests.strategies import BASE_TIME, Clock
from tests.workload import Workload

pytestmark = pytest.mark.integration
AIWP = Path(sys.executable).with_name("aiwp")


@pytest.fixture
async def platform(database_url: str, pg_schema: str) -> AsyncIterator[Platform]:
    settings = Settings(database_url=database_url, database_schema=pg_schema)
    async with open_platform(settings) as made:
        workload = Workload(made.store, seed=11)
        while workload.commands < 60:
            await workload.scenario()
        await caught_up(made)
        yield made


async def caught_up(platform: Platform) -> int:
    return max([await projector.catch_up() for projector in platform.projectors.values()])


def env(database_url: str, schema: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIWP_")}
    return clean | {"AIWP_DATABASE_URL": database_url, "AIWP_DATABASE_SCHEMA": schema, "COLUMNS": "200"}


def replay(database_url: str, schema: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AIWP), "replay", "projection", *args],
        env=env(database_url, schema),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def outcome(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode in (0, 1), result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


async def live_sums(database_url: str, schema: str) -> dict[str, tuple[int, str]]:
    """Each live table's row count and checksum, by the same code the command uses."""
    async with ShadowRebuild.open(database_url, schema, list(PROJECTIONS.values())) as rebuild:
        return {s.table: (s.rows, s.digest) for s in await rebuild.sums(schema)}


async def as_owner(platform: Platform, *statements: str) -> None:
    async with platform.pool.acquire() as conn:
        for statement in statements:
            await conn.execute(statement)


async def test_rebuilding_every_projection_gives_the_live_read_models(
    platform: Platform, database_url: str, pg_schema: str
) -> None:
    verdict = outcome(replay(database_url, pg_schema, "--all", "--verify", "--json"))
    assert verdict["ok"], verdict["differences"][:5]
    tables = {t["table"]: t for t in verdict["tables"]}
    assert set(tables) == {table for p in PROJECTIONS.values() for table in p.tables}
    assert all(t["same"] for t in tables.values())
    filled = [name for name, t in tables.items() if t["live_rows"] > 0]
    assert {"audit_events", "executions", "workflow_instances", "validation_results", "agents"} <= set(filled)
    async with platform.pool.acquire() as conn:
        assert await conn.fetchval("SELECT to_regnamespace($1)", f"{pg_schema}_replay") is None  # shadows dropped


async def test_verify_names_every_row_that_differs_and_a_swap_repairs_them(
    platform: Platform, database_url: str, pg_schema: str
) -> None:
    async with platform.pool.acquire() as conn:
        changed = await conn.fetchval("SELECT run_id FROM executions ORDER BY run_id LIMIT 1")
        removed = await conn.fetchval("SELECT agent_id FROM agents ORDER BY agent_id LIMIT 1")
    await as_owner(
        platform,
        f"UPDATE executions SET output = 'tampered' WHERE run_id = '{changed}'",
        f"DELETE FROM agents WHERE agent_id = '{removed}'",
    )
    verdict = outcome(replay(database_url, pg_schema, "executions", "agents", "--verify", "--json"))
    assert not verdict["ok"]
    assert sorted((d["table"], d["kind"]) for d in verdict["differences"]) == [
        ("agents", "only in the rebuilt table"),
        ("executions", "differs"),
    ]
    assert str(changed) in next(d["key"] for d in verdict["differences"] if d["table"] == "executions")
    plain = replay(database_url, pg_schema, "executions", "agents", "--verify")
    assert plain.returncode == 1
    assert "2 rows differ" in plain.stdout

    async with platform.pool.acquire() as conn:
        indexes_before = await conn.fetch(
            "SELECT indexname, regexp_replace(indexdef, ' ON .*\\.', ' ON ') AS def FROM pg_indexes"
            " WHERE schemaname = $1 AND tablename IN ('executions', 'agents') ORDER BY indexname",
            pg_schema,
        )
        before = await conn.fetchval("SELECT position FROM projection_positions WHERE name = 'executions'")
        owner = await conn.fetchval(
            "SELECT tableowner FROM pg_tables WHERE schemaname = $1 AND tablename = 'executions'", pg_schema
        )
    swapped = outcome(replay(database_url, pg_schema, "executions", "agents", "--json"))
    assert swapped["mode"] == "swap"
    assert swapped["positions"]["executions"] == before
    async with platform.pool.acquire() as conn:
        assert await conn.fetchval("SELECT output FROM executions WHERE run_id = $1", changed) != "tampered"
        assert await conn.fetchval("SELECT count(*) FROM agents WHERE agent_id = $1", removed) == 1
        indexes_after = await conn.fetch(
            "SELECT indexname, regexp_replace(indexdef, ' ON .*\\.', ' ON ') AS def FROM pg_indexes"
            " WHERE schemaname = $1 AND tablename IN ('executions', 'agents') ORDER BY indexname",
            pg_schema,
        )
        assert indexes_after == indexes_before
        assert owner == await conn.fetchval(
            "SELECT tableowner FROM pg_tables WHERE schemaname = $1 AND tablename = 'executions'", pg_schema
        )
        if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = 'aiwp_app'"):
            assert await conn.fetchval(
                "SELECT has_table_privilege('aiwp_app', $1, 'INSERT')", f'"{pg_schema}".executions'
            )
    assert outcome(replay(database_url, pg_schema, "--all", "--verify", "--json"))["ok"]


async def test_a_swap_while_the_projectors_keep_running_loses_nothing(
    platform: Platform, database_url: str, pg_schema: str
) -> None:
    workload = Workload(platform.store, seed=12)
    stop = asyncio.Event()

    async def keep_writing() -> None:
        while not stop.is_set():
            await workload.scenario()
            await asyncio.sleep(0.01)

    async with running_workers(platform, projections=["executions", "workflow_instances"]):
        writer = asyncio.create_task(keep_writing())
        process = await asyncio.create_subprocess_exec(
            str(AIWP),
            "replay",
            "projection",
            "executions",
            "workflow_instances",
            "--json",
            env=env(database_url, pg_schema),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await process.communicate()
        stop.set()
        await writer
        assert process.returncode == 0, stderr.decode()
        assert json.loads(stdout)["mode"] == "swap"
        for _ in range(3):
            await workload.scenario()
        assert await platform.projectors["executions"].wait_for(workload.last_position, timeout=30)
        assert await platform.projectors["workflow_instances"].wait_for(workload.last_position, timeout=30)
    await caught_up(platform)
    assert outcome(replay(database_url, pg_schema, "--all", "--verify", "--json"))["ok"]


async def test_a_rebuild_as_of_a_position_is_what_the_live_models_held_there(
    platform: Platform, database_url: str, pg_schema: str
) -> None:
    then = await caught_up(platform)
    held = await live_sums(database_url, pg_schema)
    workload = Workload(platform.store, seed=13)
    while workload.commands < 30:
        await workload.scenario()
    await caught_up(platform)
    assert await live_sums(database_url, pg_schema) != held

    rebuilt = outcome(replay(database_url, pg_schema, "--all", "--to-position", str(then), "--json"))
    assert rebuilt["mode"] == "as_of"
    assert rebuilt["position"] == then
    assert {t["table"]: (t["rows"], t["digest"]) for t in rebuilt["tables"]} == held
    async with platform.pool.acquire() as conn:
        assert await conn.fetchval("SELECT to_regnamespace($1)", f"{pg_schema}_replay") is None

    kept = outcome(replay(database_url, pg_schema, "agents", "--to-position", str(then), "--keep", "--json"))
    async with platform.pool.acquire() as conn:
        count = await conn.fetchval(f'SELECT count(*) FROM "{kept["kept_schema"]}".agents')
    assert (count, kept["tables"][0]["digest"]) == held["agents"]


async def test_a_rebuild_until_a_time_keeps_the_events_up_to_it(
    platform: Platform, database_url: str, pg_schema: str
) -> None:
    clock = Clock()
    clock.ticks = 10**8  # years after every workload event
    for name in ("early", "late"):
        await agents.register_agent(
            platform.store, clock.ctx(), agents.RegisterAgent(name=name, provider="scripted", model="m")
        )
    await caught_up(platform)
    between = (BASE_TIME + timedelta(seconds=10**8 + 1, milliseconds=500)).isoformat()
    async with platform.pool.acquire() as conn:
        agents_now = await conn.fetchval("SELECT count(*) FROM agents")
    rebuilt = outcome(replay(database_url, pg_schema, "agents", "--until", between, "--json"))
    assert rebuilt["tables"][0]["rows"] == agents_now - 1


BAD_INPUT = [
    ((), "name the projections to rebuild, or give --all"),
    (("nope",), "no projection 'nope'"),
    (("audit_events",), "never replaced"),
    (("agents", "--to-position", "99999999"), "beyond the log's head"),
    (("agents", "--to-position", "3", "--until", "2026-01-01"), "not both"),
    (("agents", "--until", "yesterday"), "--until 'yesterday' is neither"),
    (("agents", "--keep"), "--keep goes with"),
    (("agents", "--verify", "--to-position", "3"), "--verify compares"),
]


async def test_bad_input_is_one_line_and_exit_2(database_url: str, pg_schema: str) -> None:
    async with open_platform(Settings(database_url=database_url, database_schema=pg_schema)) as made:
        await agents.register_agent(
            made.store, Clock().ctx(), agents.RegisterAgent(name="a", provider="scripted", model="m")
        )
    for args, says in BAD_INPUT:
        result = replay(database_url, pg_schema, *args)
        assert result.returncode == 2, (args, result.stdout + result.stderr)
        assert says in result.stderr, args
        assert len(result.stderr.strip().splitlines()) == 1, args


async def test_verify_leaves_out_what_retention_dropped_from_the_trail(
    platform: Platform, database_url: str, pg_schema: str
) -> None:
    clock = Clock()
    clock.ticks = int((datetime.now(UTC) - BASE_TIME).total_seconds())  # an event of this month, which is kept
    await agents.register_agent(
        platform.store, clock.ctx(), agents.RegisterAgent(name="now", provider="scripted", model="m")
    )
    await caught_up(platform)
    async with platform.pool.acquire() as conn:
        await conn.execute("INSERT INTO retention_policies (tenant_id, keep_months) VALUES ('*', 1)")
    applied = subprocess.run(
        [str(AIWP), "audit", "retention", "apply", "--json"],
        env=env(database_url, pg_schema),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["dropped"]
    verdict = outcome(replay(database_url, pg_schema, "audit_events", "--verify", "--json"))
    assert verdict["ok"], verdict["differences"][:3]
    assert verdict["tables"][0]["live_rows"] == verdict["tables"][0]["rebuilt_rows"] == 1  # the rows after the cut


async def test_a_schema_of_the_shadows_name_that_a_rebuild_did_not_make_is_left_alone(
    platform: Platform, database_url: str, pg_schema: str
) -> None:
    async with platform.pool.acquire() as conn:
        await conn.execute(f'CREATE SCHEMA "{pg_schema}_replay"; CREATE TABLE "{pg_schema}_replay".precious (x int)')
    try:
        result = replay(database_url, pg_schema, "agents", "--verify")
        assert result.returncode == 2
        assert "is not a rebuild's shadow" in result.stderr
        async with platform.pool.acquire() as conn:
            assert await conn.fetchval("SELECT to_regclass($1)", f'"{pg_schema}_replay".precious') is not None
    finally:
        async with platform.pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA "{pg_schema}_replay" CASCADE')


async def test_a_projection_of_rare_events_does_not_cut_the_one_pass_over_the_log_short(
    platform: Platform, database_url: str, pg_schema: str
) -> None:
    workload = Workload(platform.store, seed=13)
    async with running_workers(platform):  # live, through the bus: `agents` moves only when an agent changes
        for _ in range(3):  # a scenario's last event is not an agent's
            await workload.scenario()
        assert await platform.wait_for(await head_of(platform), timeout=30)
    head = await head_of(platform)
    async with ShadowRebuild.open(database_url, pg_schema, list(PROJECTIONS.values())) as rebuild:
        live = await rebuild.live_positions()
        assert live["agents"] < head  # its stored position lags: no agent event came last
        assert set((await rebuild.settled_positions(live)).values()) == {head}
    assert outcome(replay(database_url, pg_schema, "--all", "--verify", "--json"))["ok"]


async def head_of(platform: Platform) -> int:
    async with platform.pool.acquire() as conn:
        return await platform.reader.head(conn)
