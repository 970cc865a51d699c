"""What `aiwp whatif` sends and compares, without any service: the recorded call, the replacements, the diff."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest

from domain.agents.agent_run import AgentRun, AgentRunRequested, ChatMessage
from ops.disclosure import ERASED
from ops.whatif import NotARun, output_diff, recorded_run, replaced, rerun_request
from projections.projection import Recorded
from tests.strategies import Clock

MESSAGES = [ChatMessage("system", "Be brief."), ChatMessage("user", "Say hello to Ada.")]


def requested_run(messages: list[ChatMessage]) -> list[Recorded]:
    clock = Clock()
    run, requested = AgentRun.request(
        clock.ctx(),
        uuid4(),
        agent_id=uuid4(),
        agent_config_version=1,
        provider="openai",
        model="gpt-4o-mini",
        temperature=0.3,
        max_tokens=200,
        messages=MESSAGES,
    )
    events = [requested, *run.start_attempt(clock.ctx("agent-worker"), provider="openai", model="gpt-4o-mini")]
    events += run.succeed(
        clock.ctx("agent-worker"),
        output="Hello, Ada.",
        latency_ms=120,
        tokens_in=9,
        tokens_out=3,
        cost=Decimal("0.0001"),
        provider_request_id="r1",
        provider="openai",
        model="gpt-4o-mini-2024-07-18",
    )
    first = AgentRunRequested(
        **{f: getattr(requested, f) for f in requested.__struct_fields__} | {"messages": messages}
    )
    return [Recorded(position, event) for position, event in enumerate([first, *events[1:]], start=1)]


def test_the_rerun_sends_the_recorded_messages_and_parameters_to_the_model_that_answered() -> None:
    recorded = recorded_run(requested_run(MESSAGES))
    request = rerun_request(recorded, provider=None, model=None, prompt=None, system=None)
    assert request.messages == MESSAGES
    assert (request.provider, request.model, request.temperature, request.max_tokens) == (
        "openai",
        "gpt-4o-mini-2024-07-18",
        0.3,
        200,
    )
    assert recorded.succeeded_at == 3


def test_a_prompt_file_replaces_the_last_user_message_and_a_system_file_the_system_message() -> None:
    assert replaced(MESSAGES, prompt="Say hi.", system=None) == [MESSAGES[0], ChatMessage("user", "Say hi.")]
    assert replaced(MESSAGES, prompt=None, system="Be warm.") == [ChatMessage("system", "Be warm."), MESSAGES[1]]
    assert replaced(MESSAGES[1:], prompt=None, system="Be warm.") == [ChatMessage("system", "Be warm."), MESSAGES[1]]


def test_a_run_whose_messages_were_erased_cannot_be_run_again_unless_they_are_replaced() -> None:
    erased = [ChatMessage("system", "Be brief."), ChatMessage("user", ERASED)]
    recorded = recorded_run(requested_run(erased))
    with pytest.raises(NotARun, match="erased"):
        rerun_request(recorded, provider=None, model=None, prompt=None, system=None)
    assert rerun_request(recorded, provider=None, model=None, prompt="Hi.", system=None).messages[-1].content == "Hi."
    with pytest.raises(NotARun, match="recorded no messages"):
        recorded_run(requested_run([ChatMessage("user", ERASED)]))


def test_a_stream_of_another_kind_is_not_a_run() -> None:
    history = requested_run(MESSAGES)
    with pytest.raises(NotARun, match="starts with AttemptStarted"):
        recorded_run(history[1:])


def test_the_diff_is_empty_for_the_same_output_and_unified_otherwise() -> None:
    assert output_diff("a\nb", "a\nb") == ""
    diff = output_diff("Hello Ada.\nRef: X-1", "Hello Ada.\nRef: INV-2041")
    assert diff.splitlines()[:2] == ["--- original", "+++ what-if"]
    assert "-Ref: X-1\n" in diff
    assert "+Ref: INV-2041\n" in diff
