"""The agents context: given events, when a command, then events or a refusal."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import pytest

from domain.agents.agent import Agent, AgentArchived, AgentReconfigured
from domain.agents.agent_run import AgentRun, AgentRunCancelled, AgentRunSucceeded, AttemptStarted, ChatMessage
from domain.agents.errors import AgentIsArchived, InvalidAgentConfiguration, InvalidRunTransition
from tests.strategies import Clock


def registered_agent(clock: Clock) -> Agent:
    agent, _ = Agent.register(
        clock.ctx(),
        UUID(int=1),
        name="writer",
        provider="openai",
        model="gpt-4o-mini",
        system_prompt="be brief",
        temperature=0.2,
        max_tokens=256,
    )
    return agent


def requested_run(clock: Clock) -> AgentRun:
    run, _ = AgentRun.request(
        clock.ctx(),
        UUID(int=2),
        agent_id=UUID(int=1),
        agent_config_version=1,
        provider="openai",
        model="gpt-4o-mini",
        temperature=0.2,
        max_tokens=256,
        messages=[ChatMessage("user", "hello")],
    )
    return run


def test_reconfiguring_an_agent_makes_a_new_configuration_version() -> None:
    clock = Clock()
    agent = registered_agent(clock)
    [event] = agent.reconfigure(
        clock.ctx(), provider="anthropic", model="claude", system_prompt="", temperature=1.0, max_tokens=10
    )
    assert isinstance(event, AgentReconfigured)
    assert (event.config_version, agent.config_version, agent.version) == (2, 2, 2)


def test_an_agent_with_an_unknown_provider_is_refused() -> None:
    with pytest.raises(InvalidAgentConfiguration, match="provider"):
        Agent.register(
            Clock().ctx(),
            UUID(int=1),
            name="x",
            provider="nope",
            model="m",
            system_prompt="",
            temperature=0.0,
            max_tokens=1,
        )


def test_an_archived_agent_takes_no_more_changes() -> None:
    clock = Clock()
    agent = registered_agent(clock)
    [event] = agent.archive(clock.ctx(), reason="replaced")
    assert isinstance(event, AgentArchived)
    with pytest.raises(AgentIsArchived):
        agent.reconfigure(clock.ctx(), provider="openai", model="m", system_prompt="", temperature=0, max_tokens=1)


def test_a_run_needs_a_user_prompt_last() -> None:
    with pytest.raises(InvalidRunTransition, match="user"):
        AgentRun.request(
            Clock().ctx(),
            UUID(int=2),
            agent_id=UUID(int=1),
            agent_config_version=1,
            provider="openai",
            model="m",
            temperature=0,
            max_tokens=1,
            messages=[ChatMessage("assistant", "hi")],
        )


def test_a_successful_attempt_records_usage_cost_and_the_reply() -> None:
    clock = Clock()
    run = requested_run(clock)
    run.start_attempt(clock.ctx(), provider="openai", model="gpt-4o-mini")
    [event] = run.succeed(
        clock.ctx(),
        output="hi there",
        latency_ms=120,
        tokens_in=10,
        tokens_out=3,
        cost=Decimal("0.000012"),
        provider_request_id="req-1",
    )
    assert isinstance(event, AgentRunSucceeded)
    assert run.status == "succeeded"
    assert (run.tokens_in, run.tokens_out, run.cost) == (10, 3, Decimal("0.000012"))
    assert run.messages[-1] == ChatMessage("assistant", "hi there")


def test_an_attempt_left_open_by_a_dead_worker_is_kept_as_abandoned() -> None:
    clock = Clock()
    run = requested_run(clock)
    run.start_attempt(clock.ctx(), provider="openai", model="m")
    [event] = run.start_attempt(clock.ctx(), provider="openai", model="m")
    assert isinstance(event, AttemptStarted)
    assert event.attempt == 2
    assert [attempt.status for attempt in run.attempts] == ["abandoned", "open"]


def test_a_finished_run_cannot_succeed_twice() -> None:
    clock = Clock()
    run = requested_run(clock)
    run.start_attempt(clock.ctx(), provider="openai", model="m")
    run.succeed(
        clock.ctx(), output="a", latency_ms=1, tokens_in=1, tokens_out=1, cost=Decimal(0), provider_request_id=""
    )
    with pytest.raises(InvalidRunTransition, match="already succeeded"):
        run.succeed(
            clock.ctx(), output="b", latency_ms=1, tokens_in=1, tokens_out=1, cost=Decimal(0), provider_request_id=""
        )


def test_a_queued_run_can_be_cancelled_but_not_after() -> None:
    clock = Clock()
    run = requested_run(clock)
    [event] = run.cancel(clock.ctx(), reason="user")
    assert isinstance(event, AgentRunCancelled)
    with pytest.raises(InvalidRunTransition):
        run.start_attempt(clock.ctx(), provider="openai", model="m")


def test_every_event_carries_the_commands_metadata() -> None:
    clock = Clock()
    ctx = clock.ctx("bob")
    agent, event = Agent.register(
        ctx, UUID(int=1), name="a", provider="scripted", model="m", system_prompt="", temperature=0, max_tokens=1
    )
    assert event.metadata == ctx.metadata()
    assert event.timestamp == ctx.at
    assert agent.tenant_id == ctx.tenant_id
