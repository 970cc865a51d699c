"""A message that keeps failing is dead-lettered and stalls its projector; nothing after it is applied."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from adapters.bus.in_process import InProcessBus
from adapters.projector import ProjectorStalled, run_projector
from ops.bootstrap import Platform
from tests.projections.envelopes import envelopes_of
from tests.workload import Workload

pytestmark = pytest.mark.integration


async def test_a_poison_message_is_dead_lettered_and_the_projector_reports_itself_stalled(platform: Platform) -> None:
    workload = Workload(platform.store)
    await workload.scenario()
    bus = platform.bus
    assert isinstance(bus, InProcessBus)
    projector = platform.projectors["executions"]
    stop = asyncio.Event()
    task = asyncio.create_task(run_projector(projector, bus, stop, max_failures=2))
    assert await projector.wait_for(workload.last_position, timeout=10)  # caught up from the store

    applied = workload.last_position
    await workload.scenario()
    envelopes = [e for e in await envelopes_of(platform, after=applied) if e.context == "agents"]
    poison_at = 3
    poisoned = msgspec.structs.replace(envelopes[poison_at], data=msgspec.Raw(b'{"not": "an event"}'))
    await bus.publish([*envelopes[:poison_at], poisoned, *envelopes[poison_at + 1 :]])
    await asyncio.wait_for(task, timeout=10)

    status = await projector.status()
    assert status.status == "stalled"
    assert f"at position {poisoned.position}" in status.error
    assert status.position == envelopes[poison_at - 1].position  # stopped before the poison, skipped nothing
    assert bus.dead_letters["projection.executions"] == [poisoned]
    with pytest.raises(ProjectorStalled, match="stalled"):
        await projector.catch_up()
    await projector.resume()
    await projector.catch_up()  # the store holds the real event: once resumed it applies
    assert (await projector.status()).status == "running"
