"""Work queues take the events their topic patterns name, as RabbitMQ's topic exchanges route them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import msgspec
import pytest

from adapters.bus.in_process import InProcessBus
from adapters.bus.port import AGENT_WORK, ORCHESTRATOR_WORK, EventBus, WorkOutcome, WorkQueue, topic_matches
from adapters.bus.rabbitmq import RabbitBus
from domain.envelope import Envelope


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("agent.AgentRun.AgentRunRequested", "agent.AgentRun.AgentRunRequested", True),
        ("agent.AgentRun.AgentRunRequested", "agent.AgentRun.AgentRunSucceeded", False),
        ("workflow.WorkflowInstance.*", "workflow.WorkflowInstance.StepStarted", True),
        ("workflow.WorkflowInstance.*", "workflow.WorkflowInstance", False),
        ("workflow.*", "workflow.WorkflowInstance.StepStarted", False),
        ("workflow.#", "workflow.WorkflowInstance.StepStarted", True),
        ("workflow.#", "workflow", True),
        ("#", "anything.at.all", True),
        ("a.#.c", "a.c", True),
        ("a.#.c", "a.b.b.c", True),
        ("a.#.c", "a.b.b.d", False),
    ],
)
def test_topic_patterns_match_like_a_topic_exchange(pattern: str, key: str, matches: bool) -> None:
    assert topic_matches(pattern, key) is matches


def test_the_orchestrator_hears_what_others_do_to_its_instances_and_the_ends_of_its_children() -> None:
    assert ORCHESTRATOR_WORK.takes("workflow.events", "workflow.WorkflowInstance.SignalReceived")
    assert ORCHESTRATOR_WORK.takes("agent.events", "agent.AgentRun.AgentRunRefused")
    assert ORCHESTRATOR_WORK.takes("validation.events", "validation.Validation.ValidationCompleted")
    assert not ORCHESTRATOR_WORK.takes("workflow.events", "workflow.WorkflowInstance.StepStarted")  # its own
    assert not ORCHESTRATOR_WORK.takes("agent.events", "agent.AgentRun.AttemptStarted")
    assert not AGENT_WORK.takes("workflow.events", "agent.AgentRun.AgentRunRequested")  # wrong exchange


def test_an_item_that_keeps_failing_waits_each_tier_in_turn_then_the_last_one() -> None:
    assert [AGENT_WORK.failure_delay(n) for n in range(1, 6)] == [2.0, 10.0, 60.0, 60.0, 60.0]


FLAKY = WorkQueue("test.flaky", (("agent.events", "agent.AgentRun.AgentRunRequested"),), retry_delays=(1, 1))


def envelope() -> Envelope:
    ids = uuid.uuid4()
    return Envelope(
        event_id=uuid.uuid4(),
        position=1,
        previous_position=0,
        context_previous_position=0,
        stream_id=ids,
        stream_version=1,
        aggregate="AgentRun",
        type="AgentRunRequested",
        topic="domain.agents.agent_run:AgentRunRequested",
        context="agents",
        schema_version=1,
        occurred_at=datetime.now(UTC),
        tenant_id="t",
        actor="a",
        correlation_id=ids,
        causation_id=ids,
        traceparent="",
        data=msgspec.Raw(b"{}"),
    )


@pytest.fixture(params=["in_process", pytest.param("rabbitmq", marks=pytest.mark.integration)])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    made: EventBus = InProcessBus() if request.param == "in_process" else RabbitBus(request.getfixturevalue("amqp_url"))
    await made.start([])
    yield made
    await made.close()


async def test_an_item_whose_handler_raises_is_retried_until_it_is_done(bus: EventBus) -> None:
    deliveries: list[Envelope] = []
    done = asyncio.Event()

    async def handler(item: Envelope) -> WorkOutcome:
        deliveries.append(item)
        if len(deliveries) < 3:
            raise RuntimeError("the database went away")
        done.set()
        return "done"

    consumer = await bus.consume_work(FLAKY, handler, concurrency=1)
    try:
        sent = envelope()
        await bus.publish([sent])
        await asyncio.wait_for(done.wait(), timeout=30)
    finally:
        await consumer.stop()
    assert [d.event_id for d in deliveries] == [sent.event_id] * 3
