"""A transaction holds its insert open while others wait: no relay or projector position passes it."""

from __future__ import annotations

import asyncio
import threading
from uuid import uuid4

import pytest
from eventsourcing.postgres import PostgresApplicationRecorder

from domain.agents.agent import Agent
from ops.bootstrap import Platform, running_workers
from tests.e2e.conftest import audited_positions, load, store_positions
from tests.strategies import Clock
from tests.workload import Workload

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def hold_an_insert_open(platform: Platform, holding: threading.Event, release: threading.Event) -> list[int]:
    """Inserts one event on the library's plain path (it takes the table lock) and waits before committing."""
    app = platform.store.app
    recorder = app.recorder
    assert isinstance(recorder, PostgresApplicationRecorder)
    _, event = Agent.register(
        Clock().ctx(),
        uuid4(),
        name="late",
        provider="scripted",
        model="m",
        system_prompt="",
        temperature=0,
        max_tokens=1,
    )
    stored = [app.mapper.to_stored_event(event)]
    with recorder.datastore.transaction(commit=True) as cursor:
        recorder._insert_stored_events(cursor, stored)
        ids = recorder._fetch_ids_after_insert_events(cursor, stored) or []
        holding.set()
        release.wait(timeout=60)
    return list(ids)


async def test_no_position_passes_an_insert_that_commits_late(platform: Platform) -> None:
    workload = Workload(platform.store, seed=2)
    async with running_workers(platform):
        await load(workload, 200, concurrency=2)
        holding, release = threading.Event(), threading.Event()
        held = asyncio.create_task(asyncio.to_thread(hold_an_insert_open, platform, holding, release))
        await asyncio.to_thread(holding.wait, 30)
        blocked = asyncio.create_task(load(workload, 400, concurrency=2))  # these queue behind the lock
        await asyncio.sleep(1.0)  # a window in which a wrong relay or projector would run ahead
        async with platform.pool.acquire() as conn:
            relay_at = await conn.fetchval("SELECT position FROM relay_positions WHERE name = 'relay'")
            furthest = await conn.fetchval("SELECT max(position) FROM projection_positions")
        release.set()
        [late] = await held
        await blocked
        assert relay_at < late
        assert furthest < late
        assert await platform.wait_for(workload.last_position, timeout=60)
    assert late in await audited_positions(platform)
    assert await audited_positions(platform) == await store_positions(platform)
