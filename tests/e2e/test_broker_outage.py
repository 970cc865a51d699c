"""RabbitMQ stopped for 10 seconds under load: no event lost, the relay and the projectors resume by themselves."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from ops.bootstrap import Platform, running_workers
from tests.e2e.conftest import audited_positions, load, store_positions
from tests.projections.conftest import checksums, rebuild
from tests.workload import Workload

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


@pytest.mark.exclusive  # the broker is down for everyone meanwhile
async def test_a_ten_second_broker_outage_under_load_loses_nothing(platform: Platform) -> None:
    workload = Workload(platform.store, seed=21)
    async with running_workers(platform):
        loading = asyncio.create_task(load(workload, 4_000, concurrency=2))
        while workload.commands < 800:
            await asyncio.sleep(0.01)
        try:
            await asyncio.to_thread(rabbitmqctl, "stop_app")
            await asyncio.sleep(10)  # the outage itself: its length is the point of the test
        finally:
            await asyncio.to_thread(rabbitmqctl, "start_app")
        await loading
        assert await platform.wait_for(workload.last_position, timeout=180)
    assert await audited_positions(platform) == await store_positions(platform)
    live = await checksums(platform)
    await rebuild(platform)
    assert await checksums(platform) == live
