"""The relay killed with SIGKILL five times under 10,000 commands: nothing lost, nothing applied twice."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from ops.bootstrap import Platform, running_workers
from tests.e2e.conftest import audited_positions, load, store_positions
from tests.e2e.processes import kill_hard, start_worker, stop, worker_env
from tests.projections.conftest import checksums, rebuild
from tests.workload import Workload

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def test_ten_thousand_commands_while_the_relay_is_killed_five_times(
    platform: Platform, database_url: str, pg_schema: str, amqp_url: str, tmp_path: Path
) -> None:
    env = worker_env(database_url, pg_schema, amqp_url)
    log = tmp_path / "relay.log"
    rng = random.Random(11)
    relay = start_worker(["worker", "relay"], env, log)
    workload = Workload(platform.store, seed=5)
    kills = sorted(rng.sample(range(1_000, 9_500), 5))
    async with running_workers(platform, relay=False):
        loading = asyncio.create_task(load(workload, 10_000))
        for threshold in kills:
            while workload.commands < threshold and not loading.done():
                await asyncio.sleep(0.01)
            kill_hard(relay)
            relay = start_worker(["worker", "relay"], env, log)
        await loading
        assert await platform.wait_for(workload.last_position, timeout=180), log.read_text()[-3000:]
    assert stop(relay) == 0
    assert workload.commands >= 10_000

    # Every event reached the audit trail (which consumes everything), exactly once and in order.
    assert await audited_positions(platform) == await store_positions(platform)
    # Each read model applied each event exactly once: it equals a fresh rebuild from the store.
    live = await checksums(platform)
    await rebuild(platform)
    assert await checksums(platform) == live
