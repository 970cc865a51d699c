"""The agents context: given events, when a command, then events or a refusal."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import msgspec
import pytest

from domain.agents.agent import Agent, AgentArchived, AgentReconfigured, AgentRegistered, Fallback
from domain.agents.agent_run import (
    AgentRun,
    AgentRunCancelled,
    AgentRunRefused,
    AgentRunSucceeded,
    AttemptStarted,
    ChatMessage,
)
from domain.agents.errors import AgentIsArchived, InvalidAgentConfiguration, InvalidRunTransition
from domain.codec import decode_event, topic_of
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


def test_an_agent_keeps_its_endpoint_fallbacks_and_json_output_and_its_runs_carry_them() -> None:
    clock = Clock()
    chain = [Fallback(provider="anthropic", model="claude"), Fallback(provider="openai", model="gpt-4o-mini")]
    agent, _ = Agent.register(
        clock.ctx(),
        UUID(int=1),
        name="local",
        provider="openai_compatible",
        model="llama3",
        system_prompt="",
        temperature=0.2,
        max_tokens=64,
        base_url="http://127.0.0.1:11434/v1",
        fallbacks=chain,
        json_output=True,
    )
    assert (agent.base_url, agent.fallbacks, agent.json_output) == ("http://127.0.0.1:11434/v1", chain, True)
    agent.reconfigure(clock.ctx(), provider="openai", model="gpt-4o", system_prompt="", temperature=0, max_tokens=9)
    assert (agent.base_url, agent.fallbacks, agent.json_output) == (None, [], False)


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"base_url": "ftp://files.example"}, "not an http"),
        ({"base_url": "https://user:secret@llm.example"}, "credentials"),
        ({"provider": "openai_compatible"}, "needs the base_url"),
        ({"fallbacks": [Fallback(provider="bard", model="x")]}, r"fallbacks\[0\]: provider"),
        ({"fallbacks": [Fallback(provider="openai", model="x", base_url="llm.example")]}, r"fallbacks\[0\].base_url"),
        ({"fallbacks": [Fallback(provider="openai", model=" ")]}, "model must not be empty"),
        ({"fallbacks": [Fallback(provider="scripted", model="m")] * 6}, "at most 5"),
    ],
)
def test_a_bad_endpoint_or_fallback_is_refused_saying_which(changes: dict[str, object], complaint: str) -> None:
    config: dict[str, object] = {"provider": "openai", "model": "m", "system_prompt": "", "temperature": 0.2}
    with pytest.raises(InvalidAgentConfiguration, match=complaint):
        Agent.register(Clock().ctx(), UUID(int=1), name="x", max_tokens=10, **(config | changes))  # type: ignore[arg-type]


def test_an_agent_registered_before_endpoints_existed_still_loads_with_the_defaults() -> None:
    ctx = Clock().ctx()
    stored = msgspec.json.encode(
        {
            "originator_id": str(UUID(int=1)),
            "originator_version": 1,
            "timestamp": ctx.at.isoformat(),
            "metadata": msgspec.to_builtins(ctx.metadata()),
            "name": "old",
            "provider": "openai",
            "model": "gpt-4o-mini",
            "system_prompt": "",
            "temperature": 0.2,
            "max_tokens": 256,
        }
    )
    event = decode_event(topic_of(AgentRegistered), stored)
    agent = Agent.project([event])
    assert agent is not None
    assert (agent.base_url, agent.fallbacks, agent.json_output) == (None, [], False)


def test_a_refused_run_is_finished_and_says_until_when() -> None:
    clock = Clock()
    run = requested_run(clock)
    until = datetime(2026, 1, 2, tzinfo=UTC)
    [event] = run.refuse(clock.ctx(), reason="the daily token budget would be exceeded", retry_at=until)
    assert isinstance(event, AgentRunRefused)
    assert (run.status, run.refused_until, run.error) == ("refused", until, event.reason)
    with pytest.raises(InvalidRunTransition):
        run.start_attempt(clock.ctx(), provider="openai", model="gpt-4o-mini")


def test_a_success_records_the_fallback_that_answered_on_its_attempt() -> None:
    clock = Clock()
    run = requested_run(clock)
    run.start_attempt(clock.ctx(), provider="openai", model="gpt-4o-mini")
    run.succeed(
        clock.ctx(),
        output="hi",
        latency_ms=1,
        tokens_in=1,
        tokens_out=1,
        cost=Decimal(0),
        provider_request_id="r",
        provider="anthropic",
        model="claude",
        fallback_errors=["openai: 500"],
    )
    assert (run.attempts[-1].provider, run.attempts[-1].model) == ("anthropic", "claude")
