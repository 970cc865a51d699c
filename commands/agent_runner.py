"""Executing an agent run: the side effect (the LLM call) happens here, between two recorded events.

Every step is an event on the run: the attempt starts, then it succeeds (with usage and cost) or fails.
A worker that dies mid-call leaves the attempt open; the redelivered message starts a new attempt and the
old one is kept as abandoned. A run finished or cancelled meanwhile is left as it is.

For a tenant with a budget, the run's worst case is reserved before its first call, or the run is refused
without any call; when the run ends, the reservation is settled with what it used (ADR 0004). The call goes
to the agent's provider, then to its fallbacks in turn, and the run records which of them answered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal
from uuid import UUID

from commands.agents import (
    CompleteAgentRun,
    FailAgentRun,
    RecordAttemptFailure,
    RefuseAgentRun,
    StartRunAttempt,
    complete_agent_run,
    fail_agent_run,
    record_attempt_failure,
    refuse_agent_run,
    start_run_attempt,
)
from commands.budgets import (
    ReserveBudget,
    SettleBudget,
    TenantBudgets,
    reserve_budget,
    settle_budget,
    worst_case_of,
)
from commands.errors import AggregateNotFound, ConcurrencyError
from commands.llm import LlmError, LlmProvider, LlmReply, LlmRequest, complete_with_fallback
from commands.ports import EventStore
from commands.unit_of_work import IdentityMap
from domain.agents.agent_run import TERMINAL, AgentRun
from domain.agents.budget import BudgetLimits
from domain.agents.budget_ledger import day_of
from domain.agents.errors import BudgetExhausted, InvalidRunTransition
from domain.agents.pricing import PriceTable
from domain.aggregate import CommandContext

Outcome = Literal["succeeded", "failed", "retry", "skipped", "refused"]
WORKER = "agent-worker"
Context = Callable[[], CommandContext]


@dataclass(frozen=True)
class RunResult:
    outcome: Outcome
    retry_after: float | None = None
    detail: str = ""


def chain_of(run: AgentRun) -> list[LlmRequest]:
    """The requests to try in turn: the agent's provider, then its fallbacks."""
    first = LlmRequest(
        provider=run.provider,
        model=run.model,
        messages=run.messages,
        temperature=run.temperature,
        max_tokens=run.max_tokens,
        json_output=run.json_output,
        base_url=run.base_url,
    )
    fallbacks = [
        LlmRequest(
            provider=fallback.provider,
            model=fallback.model,
            messages=run.messages,
            temperature=run.temperature,
            max_tokens=run.max_tokens,
            json_output=run.json_output,
            base_url=fallback.base_url,
        )
        for fallback in run.fallbacks
    ]
    return [first, *fallbacks]


@dataclass(frozen=True)
class AgentRunner:
    store: EventStore
    llm: LlmProvider
    prices: PriceTable
    context: Callable[[str, UUID], CommandContext]  # (tenant, correlation id) → a context stamped now
    budgets: TenantBudgets
    max_attempts: int = 3

    async def execute(self, run_id: UUID) -> RunResult:
        """Makes one attempt at a run; `retry` asks the caller to deliver it again later."""
        # One load of the run for the whole attempt: its next writes decide on the copy already in hand.
        return await replace(self, store=IdentityMap(self.store))._execute(run_id)

    async def _execute(self, run_id: UUID) -> RunResult:
        try:
            run = await self.store.get(AgentRun, run_id)
        except AggregateNotFound:
            return RunResult("skipped", detail=f"run {run_id} does not exist")

        def ctx() -> CommandContext:
            return self.context(run.tenant_id, run.correlation_id)

        limits = await self.budgets.limits_of(run.tenant_id, ctx().at)
        metered = limits is not None
        if run.status in TERMINAL:
            if metered:  # cancelled while it waited for a retry: release what it still holds
                await self._settle(run, ctx, run.tokens_in + run.tokens_out, run.cost)
            return RunResult("skipped", detail=f"run {run_id} is already {run.status}")
        chain = chain_of(run)
        if limits is not None:
            refused = await self._reserve(run, chain, limits, ctx)
            if refused is not None:
                return refused
        try:
            await start_run_attempt(
                self.store, ctx(), StartRunAttempt(run_id=run_id, provider=run.provider, model=run.model)
            )
        except (ConcurrencyError, InvalidRunTransition) as raced:  # cancelled, or another worker's attempt
            return await self._skipped(run, str(raced), ctx, metered)
        try:
            reply, failures = await complete_with_fallback(self.llm, chain)
        except LlmError as error:
            return await self._failed(run, error, ctx, metered)
        answered = chain[len(failures)]
        cost = self._cost(answered, reply)
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
                    provider=answered.provider,
                    model=reply.model or answered.model,
                    fallback_errors=[str(failure) for failure in failures],
                ),
            )
        except (ConcurrencyError, InvalidRunTransition) as raced:  # cancelled while the call ran
            if metered:  # the call was made: its tokens count all the same
                await self._settle(run, ctx, reply.tokens_in + reply.tokens_out, cost)
            return RunResult("skipped", detail=str(raced))
        if metered:
            await self._settle(run, ctx, reply.tokens_in + reply.tokens_out, cost)
        return RunResult("succeeded")

    def _cost(self, answered: LlmRequest, reply: LlmReply) -> Decimal:
        """Priced by the model that answered if the table knows it (a dated snapshot may not be), else as asked."""
        model = reply.model if self.prices.price_of(answered.provider, reply.model) else answered.model
        return self.prices.cost(answered.provider, model, reply.tokens_in, reply.tokens_out)

    async def _reserve(
        self, run: AgentRun, chain: list[LlmRequest], limits: BudgetLimits, ctx: Context
    ) -> RunResult | None:
        """Holds the run's worst case on the budget, or refuses the run before any call; None when it may go."""
        tokens, cost = worst_case_of(chain, self.prices)
        reservation = ReserveBudget(run_id=run.id, day=day_of(run.created_at), tokens=tokens, cost=cost, limits=limits)
        try:
            await reserve_budget(self.store, ctx(), reservation)
        except BudgetExhausted as exhausted:
            try:
                await refuse_agent_run(
                    self.store,
                    ctx(),
                    RefuseAgentRun(run_id=run.id, reason=exhausted.reason, retry_at=exhausted.retry_at),
                )
            except (ConcurrencyError, InvalidRunTransition) as raced:
                return RunResult("skipped", detail=str(raced))
            return RunResult("refused", detail=exhausted.reason)
        except ConcurrencyError as contended:
            return RunResult("retry", retry_after=1.0, detail=str(contended))
        return None

    async def _settle(self, run: AgentRun, ctx: Context, tokens: int, cost: Decimal) -> None:
        settlement = SettleBudget(run_id=run.id, day=day_of(run.created_at), tokens=tokens, cost=cost)
        await settle_budget(self.store, ctx(), settlement)

    async def _skipped(self, run: AgentRun, detail: str, ctx: Context, metered: bool) -> RunResult:
        """Leaves a run someone else finished; a reservation it still holds (it was cancelled) is released."""
        if metered:
            latest = await self.store.get(AgentRun, run.id)
            if latest.status in TERMINAL:
                await self._settle(run, ctx, latest.tokens_in + latest.tokens_out, latest.cost)
        return RunResult("skipped", detail=detail)

    async def _failed(self, run: AgentRun, error: LlmError, ctx: Context, metered: bool) -> RunResult:
        attempts = run.attempts_made + 1  # this one included (it is still open)
        try:
            await record_attempt_failure(
                self.store,
                ctx(),
                RecordAttemptFailure(run_id=run.id, error=str(error), latency_ms=0, retryable=error.retryable),
            )
            if error.retryable and attempts < self.max_attempts:
                return RunResult("retry", retry_after=error.retry_after, detail=str(error))  # the reservation stays
            await fail_agent_run(
                self.store, ctx(), FailAgentRun(run_id=run.id, reason=f"after {attempts} attempt(s): {error}")
            )
        except (ConcurrencyError, InvalidRunTransition) as raced:
            return await self._skipped(run, str(raced), ctx, metered)
        if metered:
            await self._settle(run, ctx, 0, Decimal(0))
        return RunResult("failed", detail=str(error))
