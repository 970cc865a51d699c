"""One relay is active per database; a standby takes over within seconds when the active one dies."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ops.bootstrap import Platform, running_workers
from tests.e2e.conftest import audited_positions, store_positions
from tests.e2e.processes import kill_hard, start_worker, stop, worker_env
from tests.workload import Workload

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def test_a_standby_relay_takes_over_when_the_active_one_is_killed(
    platform: Platform, database_url: str, pg_schema: str, amqp_url: str, tmp_path: Path
) -> None:
    env = worker_env(database_url, pg_schema, amqp_url)
    active = start_worker(["worker", "relay"], env, tmp_path / "active.log")
    workload = Workload(platform.store, seed=8)
    async with running_workers(platform, relay=False, projections=["audit_events"]):
        await workload.scenario()
        assert await platform.wait_for(workload.last_position, timeout=60, names=["audit_events"])
        standby = platform.relay()  # in this process: it waits on the advisory lock
        stop_standby = asyncio.Event()
        standing_by = asyncio.create_task(standby.run_forever(stop_standby))
        await asyncio.sleep(1.5)
        assert not standby.active.is_set(), "two relays were active at once"
        kill_hard(active)
        killed_at = time.monotonic()
        await asyncio.wait_for(standby.active.wait(), timeout=10)
        takeover = time.monotonic() - killed_at
        await workload.scenario()
        assert await platform.wait_for(workload.last_position, timeout=60, names=["audit_events"])
        stop_standby.set()
        await standing_by
    assert takeover < 5
    assert await audited_positions(platform) == await store_positions(platform)
    assert stop(active) in (-9, 0)
