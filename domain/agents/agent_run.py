"""`AgentRun`: one execution of an agent: requested → running → succeeded | failed | cancelled | refused.

Each call to a provider is an attempt. An attempt left open by a worker that died is marked
abandoned when the next attempt starts, so the history keeps both. A run that the tenant's budget
cannot pay for is refused before any call, with the time its budget period resets (if waiting helps).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Self
from uuid import UUID

import msgspec

from domain.agents.agent import Fallback
from domain.agents.errors import InvalidRunTransition
from domain.aggregate import Aggregate, CommandContext
from domain.events import DomainEvent, StepRef
from domain.personal import PersonalText

RunStatus = Literal["requested", "running", "succeeded", "failed", "cancelled", "refused"]
AttemptStatus = Literal["open", "failed", "succeeded", "abandoned"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled", "refused"})


class ChatMessage(msgspec.Struct, frozen=True):
    role: Literal["system", "user", "assistant"]
    content: PersonalText


class Attempt(msgspec.Struct, kw_only=True):
    number: int
    provider: str
    model: str
    status: AttemptStatus = "open"
    error: str = ""
    latency_ms: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal = Decimal(0)


class AgentRunRequested(DomainEvent, frozen=True, kw_only=True):
    agent_id: UUID
    agent_config_version: int
    provider: str
    model: str
    temperature: float
    max_tokens: int
    messages: list[ChatMessage]
    context_id: UUID | None = None
    workflow_step: StepRef | None = None
    base_url: str | None = None
    fallbacks: list[Fallback] = msgspec.field(default_factory=list)
    json_output: bool = False


class AttemptStarted(DomainEvent, frozen=True, kw_only=True):
    attempt: int
    provider: str
    model: str


class AttemptFailed(DomainEvent, frozen=True, kw_only=True):
    attempt: int
    error: str
    latency_ms: int
    retryable: bool


class AgentRunSucceeded(DomainEvent, frozen=True, kw_only=True):
    attempt: int
    output: PersonalText
    latency_ms: int
    tokens_in: int
    tokens_out: int
    cost: Decimal
    provider_request_id: str
    # Who answered (a fallback, when the providers before it failed) and why the others did not.
    provider: str = ""
    model: str = ""
    fallback_errors: list[str] = msgspec.field(default_factory=list)


class AgentRunFailed(DomainEvent, frozen=True, kw_only=True):
    reason: str


class AgentRunCancelled(DomainEvent, frozen=True, kw_only=True):
    reason: str


class AgentRunRefused(DomainEvent, frozen=True, kw_only=True):
    """The budget could not pay for the run; `retry_at` is when its period resets (None: waiting cannot help)."""

    reason: str
    retry_at: datetime | None = None


class AgentRun(Aggregate, kw_only=True):
    creation_event = AgentRunRequested

    agent_id: UUID
    agent_config_version: int
    provider: str
    model: str
    temperature: float
    max_tokens: int
    messages: list[ChatMessage]
    context_id: UUID | None
    workflow_step: StepRef | None
    correlation_id: UUID  # of the request: the worker's events join the same conversation
    base_url: str | None = None
    fallbacks: list[Fallback] = msgspec.field(default_factory=list)
    json_output: bool = False
    status: RunStatus = "requested"
    attempts: list[Attempt] = msgspec.field(default_factory=list)
    output: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal = Decimal(0)
    error: str = ""
    refused_until: datetime | None = None

    @classmethod
    def request(
        cls,
        ctx: CommandContext,
        run_id: UUID,
        *,
        agent_id: UUID,
        agent_config_version: int,
        provider: str,
        model: str,
        temperature: float,
        max_tokens: int,
        messages: list[ChatMessage],
        context_id: UUID | None = None,
        workflow_step: StepRef | None = None,
        base_url: str | None = None,
        fallbacks: list[Fallback] | None = None,
        json_output: bool = False,
    ) -> tuple[Self, AgentRunRequested]:
        if not messages or messages[-1].role != "user":
            raise InvalidRunTransition("a run needs messages that end with the user's prompt")
        return cls._create(
            ctx,
            run_id,
            AgentRunRequested,
            agent_id=agent_id,
            agent_config_version=agent_config_version,
            provider=provider,
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            messages=messages,
            context_id=context_id,
            workflow_step=workflow_step,
            base_url=base_url,
            fallbacks=list(fallbacks or []),
            json_output=json_output,
        )

    def start_attempt(self, ctx: CommandContext, *, provider: str, model: str) -> list[DomainEvent]:
        self.check_not_finished()
        return [self._trigger(ctx, AttemptStarted, attempt=len(self.attempts) + 1, provider=provider, model=model)]

    def record_attempt_failure(
        self, ctx: CommandContext, *, error: str, latency_ms: int, retryable: bool
    ) -> list[DomainEvent]:
        attempt = self.check_open_attempt()
        return [
            self._trigger(
                ctx, AttemptFailed, attempt=attempt.number, error=error, latency_ms=latency_ms, retryable=retryable
            )
        ]

    def succeed(
        self,
        ctx: CommandContext,
        *,
        output: str,
        latency_ms: int,
        tokens_in: int,
        tokens_out: int,
        cost: Decimal,
        provider_request_id: str,
        provider: str = "",
        model: str = "",
        fallback_errors: list[str] | None = None,
    ) -> list[DomainEvent]:
        attempt = self.check_open_attempt()
        if tokens_in < 0 or tokens_out < 0 or cost < 0 or latency_ms < 0:
            raise InvalidRunTransition("token counts, cost and latency cannot be negative")
        return [
            self._trigger(
                ctx,
                AgentRunSucceeded,
                attempt=attempt.number,
                output=output,
                latency_ms=latency_ms,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                cost=cost,
                provider_request_id=provider_request_id,
                provider=provider,
                model=model,
                fallback_errors=list(fallback_errors or []),
            )
        ]

    def fail(self, ctx: CommandContext, *, reason: str) -> list[DomainEvent]:
        self.check_not_finished()
        return [self._trigger(ctx, AgentRunFailed, reason=reason)]

    def cancel(self, ctx: CommandContext, *, reason: str) -> list[DomainEvent]:
        self.check_not_finished()
        return [self._trigger(ctx, AgentRunCancelled, reason=reason)]

    def refuse(self, ctx: CommandContext, *, reason: str, retry_at: datetime | None) -> list[DomainEvent]:
        self.check_not_finished()
        return [self._trigger(ctx, AgentRunRefused, reason=reason, retry_at=retry_at)]

    @property
    def attempts_made(self) -> int:
        """Calls that reached an outcome or were cut short; the open one is not counted."""
        return sum(1 for attempt in self.attempts if attempt.status != "open")

    def check_not_finished(self) -> None:
        if self.status in TERMINAL:
            raise InvalidRunTransition(f"run {self.id} is already {self.status}")

    def check_open_attempt(self) -> Attempt:
        self.check_not_finished()
        if not self.attempts or self.attempts[-1].status != "open":
            raise InvalidRunTransition(f"run {self.id} has no attempt in progress")
        return self.attempts[-1]

    @classmethod
    def created_by(cls, event: Any) -> Self:
        assert isinstance(event, AgentRunRequested)
        return cls(
            **cls._identity(event),
            agent_id=event.agent_id,
            agent_config_version=event.agent_config_version,
            provider=event.provider,
            model=event.model,
            temperature=event.temperature,
            max_tokens=event.max_tokens,
            messages=list(event.messages),
            context_id=event.context_id,
            workflow_step=event.workflow_step,
            correlation_id=event.metadata.correlation_id,
            base_url=event.base_url,
            fallbacks=list(event.fallbacks),
            json_output=event.json_output,
        )

    def apply(self, event: Any) -> None:
        match event:
            case AttemptStarted():
                if self.attempts and self.attempts[-1].status == "open":
                    self.attempts[-1].status = "abandoned"
                self.attempts.append(Attempt(number=event.attempt, provider=event.provider, model=event.model))
                self.status = "running"
            case AttemptFailed():
                attempt = self.attempts[-1]
                attempt.status = "failed"
                attempt.error = event.error
                attempt.latency_ms = event.latency_ms
            case AgentRunSucceeded():
                attempt = self.attempts[-1]
                attempt.status = "succeeded"
                attempt.latency_ms = event.latency_ms
                attempt.tokens_in = event.tokens_in
                attempt.tokens_out = event.tokens_out
                attempt.cost = event.cost
                if event.provider:
                    attempt.provider, attempt.model = event.provider, event.model
                self.messages = [*self.messages, ChatMessage("assistant", event.output)]
                self.output = event.output
                self.tokens_in += event.tokens_in
                self.tokens_out += event.tokens_out
                self.cost += event.cost
                self.status = "succeeded"
            case AgentRunFailed():
                if self.attempts and self.attempts[-1].status == "open":
                    self.attempts[-1].status = "abandoned"
                self.error = event.reason
                self.status = "failed"
            case AgentRunCancelled():
                if self.attempts and self.attempts[-1].status == "open":
                    self.attempts[-1].status = "abandoned"
                self.error = event.reason
                self.status = "cancelled"
            case AgentRunRefused():
                if self.attempts and self.attempts[-1].status == "open":
                    self.attempts[-1].status = "abandoned"
                self.error = event.reason
                self.refused_until = event.retry_at
                self.status = "refused"
            case _:
                super().apply(event)
