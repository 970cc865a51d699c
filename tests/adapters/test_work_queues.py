"""Work queues take the events their topic patterns name, as RabbitMQ's topic exchanges route them."""

from __future__ import annotations

import pytest

from adapters.bus.port import AGENT_WORK, ORCHESTRATOR_WORK, topic_matches


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
