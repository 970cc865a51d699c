"""What `aiwp whatif` compares, built from a run's stream already read: no I/O here.

The re-run sends the run's recorded messages, temperature, token limit and JSON mode; `--prompt-file`
replaces the last user message (the prompt the step rendered) and `--system-file` the system message
(the agent's system prompt), so either half of the conversation can be tried on its own.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from commands.llm import LlmReply, LlmRequest
from domain.agents.agent_run import AgentRun, AgentRunRequested, AgentRunSucceeded, ChatMessage
from domain.agents.pricing import PriceTable
from domain.events import StepRef
from ops.disclosure import ERASED
from projections.projection import Recorded


class NotARun(Exception):
    """The stream is not an agent run's, or the run cannot be re-run; the message says which."""


@dataclass(frozen=True)
class RecordedRun:
    """A run as its stream tells it: what was asked, and what answered."""

    run: AgentRun
    requested: AgentRunRequested
    succeeded: AgentRunSucceeded | None
    succeeded_at: int | None  # the position of its success in the log

    @property
    def provider(self) -> str:
        """Who answered (a fallback, if the agent's provider failed), else who was asked."""
        return self.succeeded.provider if self.succeeded and self.succeeded.provider else self.run.provider

    @property
    def model(self) -> str:
        return self.succeeded.model if self.succeeded and self.succeeded.model else self.run.model

    @property
    def base_url(self) -> str | None:
        if self.provider == self.run.provider:
            return self.run.base_url
        chosen = [f for f in self.run.fallbacks if (f.provider, f.model) == (self.provider, self.model)]
        return chosen[0].base_url if chosen else None

    @property
    def step(self) -> StepRef | None:
        return self.requested.workflow_step


def recorded_run(history: Sequence[Recorded]) -> RecordedRun:
    """The run of a stream; `NotARun` if it is another kind of stream or recorded no messages."""
    first = history[0].event if history else None
    if not isinstance(first, AgentRunRequested):
        kind = type(first).__name__ if first is not None else "empty"
        raise NotARun(f"is not an agent run (its stream starts with {kind})")
    if not first.messages or all(m.content == ERASED for m in first.messages):
        raise NotARun("recorded no messages to send again")
    run = AgentRun.project(r.event for r in history)
    assert run is not None
    successes = [r for r in history if isinstance(r.event, AgentRunSucceeded)]
    success = successes[-1] if successes else None
    event = success.event if success else None
    assert event is None or isinstance(event, AgentRunSucceeded)
    return RecordedRun(run, first, event, success.position if success else None)


def replaced(messages: Sequence[ChatMessage], *, prompt: str | None, system: str | None) -> list[ChatMessage]:
    """The messages with the last user message and/or the system message replaced."""
    result = list(messages)
    if prompt is not None:
        last_user = max(i for i, m in enumerate(result) if m.role == "user")
        result[last_user] = ChatMessage("user", prompt)
    if system is not None:
        systems = [i for i, m in enumerate(result) if m.role == "system"]
        if systems:
            result[systems[0]] = ChatMessage("system", system)
        else:
            result.insert(0, ChatMessage("system", system))
    if any(m.content == ERASED for m in result):
        raise NotARun("has erased messages: replace them with --prompt-file / --system-file, or nothing can be sent")
    return result


def rerun_request(
    recorded: RecordedRun, *, provider: str | None, model: str | None, prompt: str | None, system: str | None
) -> LlmRequest:
    """The one call the what-if makes: the recorded call, with what the user changed."""
    chosen = provider or recorded.provider
    same_endpoint = chosen == recorded.provider
    return LlmRequest(
        provider=chosen,
        model=model or recorded.model,
        messages=replaced(recorded.requested.messages, prompt=prompt, system=system),
        temperature=recorded.run.temperature,
        max_tokens=recorded.run.max_tokens,
        json_output=recorded.run.json_output,
        base_url=recorded.base_url if same_endpoint else None,
    )


def cost_of(prices: PriceTable, request: LlmRequest, reply: LlmReply) -> Decimal:
    """Priced as the agent worker prices: by the model that answered if the table knows it, else as asked."""
    model = reply.model if prices.price_of(request.provider, reply.model) else request.model
    return prices.cost(request.provider, model, reply.tokens_in, reply.tokens_out)


def output_diff(original: str, other: str) -> str:
    """A unified diff of the two outputs, line by line; empty when they are the same."""
    lines = difflib.unified_diff(
        original.splitlines(keepends=True), other.splitlines(keepends=True), "original", "what-if", lineterm=""
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
