"""Executing an agent run: the side effect (the LLM call) happens here, between two recorded events.

Every step is an event on the run: the attempt starts, then it succeeds (with usage and cost) or fails.
A worker that dies mid-call leaves the attempt open; the redelivered message starts a new attempt and the
old one is kept as abandoned. A run finished or cancelled meanwhile is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from commands.agents import (
    CompleteAgentRun,
    FailAgentRun,
    RecordAttemptFailure,
    StartRunAttempt,
    complete_agent_run,
    fail_agent_run,
    record_attempt_failure,
    start_run_attempt,
)
from commands.errors import AggregateNotFound, ConcurrencyError
from commands.llm import LlmError, LlmProvider, LlmRequest
from commands.ports import EventStore
from domain.agents.agent_run import TERMINAL, AgentRun
from domain.agents.errors import InvalidRunTransition
from domain.agents.pricing import PriceTable
from domain.aggregate import CommandContext

Outcome = Literal["succeeded", "failed", "retry", "skipped"]
WORKER = "agent-worker"


@dataclass(frozen=True)
class RunResult:
    outcome: Outcome
    retry_after: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class AgentRunner:
    store: EventStore
    llm: LlmProvider
    prices: PriceTable
    context: Callable[[str, UUID], CommandContext]  # (tenant, correlation id) → a context stamped now
    max_attempts: int = 3

    async def execute(self, run_id: UUID) -> RunResult:
        """Makes one attempt at a run; `retry` asks the caller to deliver it again later."""
        try:
            run = await self.store.get(AgentRun, run_id)
        except AggregateNotFound:
            return RunResult("skipped", detail=f"run {run_id} does not exist")
        if run.status in TERMINAL:
            return RunResult("skipped", detail=f"run {run_id} is already {run.status}")

        def ctx() -> CommandContext:
            return self.context(run.tenant_id, run.correlation_id)

        try:
            await start_run_attempt(
                self.store, ctx(), StartRunAttempt(run_id=run_id, provider=run.provider, model=run.model)
            )
        except (ConcurrencyError, InvalidRunTransition) as raced:  # cancelled, or another worker's attempt
            return RunResult("skipped", detail=str(raced))
        request = LlmRequest(
            provider=run.provider,
            model=run.model,
            messages=run.messages,
            temperature=run.temperature,
            max_tokens=run.max_tokens,
        )
        try:
            reply = await self.llm.complete(request)
        except LlmError as error:
            return await self._failed(run, error, ctx)
        cost = self.prices.cost(reply.provider, reply.model, reply.tokens_in, reply.tokens_out)
        try:
            await complete_agent_run(
                self.store,
                ctx(),
                CompleteAgentRun(
                    run_id=run_id,
                    output=reply.text.replace("\x00", ""),
                    latency_ms=reply.latency_ms,
                    tokens_in=reply.tokens_in,
                    tokens_out=reply.tokens_out,
                    cost=cost,
                    provider_request_id=reply.request_id,
                ),
            )
        except (ConcurrencyError, InvalidRunTransition) as raced:  # cancelled while the call ran
            return RunResult("skipped", detail=str(raced))
        return RunResult("succeeded")

    async def _failed(self, run: AgentRun, error: LlmError, ctx: Callable[[], CommandContext]) -> RunResult:
        try:
            await record_attempt_failure(
                self.store,
                ctx(),
                RecordAttemptFailure(run_id=run.id, error=str(error), latency_ms=0, retryable=error.retryable),
            )
            attempts = run.attempts_made + 1
            if error.retryable and attempts < self.max_attempts:
                return RunResult("retry", retry_after=error.retry_after, detail=str(error))
            await fail_agent_run(
                self.store, ctx(), FailAgentRun(run_id=run.id, reason=f"after {attempts} attempt(s): {error}")
            )
        except (ConcurrencyError, InvalidRunTransition) as raced:
            return RunResult("skipped", detail=str(raced))
        return RunResult("failed", detail=str(error))
