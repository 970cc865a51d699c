"""Evaluating a requested validation: every rule, then exactly one `ValidationCompleted`.

Text and JSON-schema rules are evaluated here; each `llm_judge` rule asks its judge agent (the side effect)
and records the call on the validation's stream before the verdict. A judge reply already recorded by an
earlier delivery is reused, never paid for twice. A retryable LLM failure asks for a later delivery until
the rule's attempts run out; then, like a missing judge or a malformed reply, the rule fails saying why.

For a tenant with a budget, each judge call's worst case is reserved on its ledger before the call, exactly
as an agent run's is, and settled with what the call used before its outcome is recorded; a call the budget
cannot pay for is never made, and its rule fails naming the limit (ADR 0004).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal
from uuid import UUID

from commands.budgets import ReserveBudget, SettleBudget, TenantBudgets, reserve_budget, settle_budget, worst_case_of
from commands.errors import AggregateNotFound, ConcurrencyError
from commands.judge_prompt import judge_messages
from commands.llm import LlmError, LlmProvider, LlmRequest, complete_with_fallback
from commands.ports import EventStore, Names
from commands.rule_evaluation import evaluate_rules
from commands.validation import (
    CompleteValidation,
    RecordJudgeFailure,
    RecordJudgement,
    complete_validation,
    record_judge_failure,
    record_judgement,
)
from domain.agents.agent import Agent
from domain.agents.budget import BudgetLimits
from domain.agents.budget_ledger import day_of, judge_charge_id
from domain.agents.errors import BudgetExhausted
from domain.agents.pricing import PriceTable
from domain.aggregate import CommandContext
from domain.validation.errors import ValidationError
from domain.validation.judge import judge_failed, judge_result
from domain.validation.ruleset import Rule
from domain.validation.scoring import RuleResult
from domain.validation.validation import Validation

log = logging.getLogger(__name__)
Outcome = Literal["completed", "retry", "skipped", "dead"]
WORKER = "validation-worker"
LAGGING_RETRY_SECONDS = 10.0
CONTENDED_LEDGER_RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class EvaluationResult:
    outcome: Outcome
    retry_after: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class Retry:
    """A judge call failed in a way that may pass later."""

    after: float | None
    detail: str


@dataclass(frozen=True)
class ValidationRunner:
    store: EventStore
    llm: LlmProvider
    names: Names
    prices: PriceTable
    context: Callable[[str, UUID], CommandContext]  # (tenant, correlation id) → a context stamped now
    agents_seen: Callable[[int], Awaitable[bool]]  # waits until the agents read model has applied a position
    budgets: TenantBudgets
    max_judge_attempts: int = 3

    async def execute(self, validation_id: UUID) -> EvaluationResult:
        """Evaluates every rule and completes the validation; `retry` asks for a later delivery."""
        try:
            validation = await self.store.get(Validation, validation_id)
        except AggregateNotFound:
            return EvaluationResult("skipped", detail=f"validation {validation_id} does not exist")
        if validation.status == "completed":
            return EvaluationResult("skipped", detail=f"validation {validation_id} is already completed")
        try:
            results = await self._results(validation)
        except (ConcurrencyError, ValidationError) as raced:  # a duplicate delivery, or a direct completion
            return EvaluationResult("skipped", detail=str(raced))
        if isinstance(results, Retry):
            return EvaluationResult("retry", retry_after=results.after, detail=results.detail)
        return await self._complete(validation, results)

    def _ctx(self, validation: Validation) -> CommandContext:
        return self.context(validation.tenant_id, validation.correlation_id)

    async def _results(self, validation: Validation) -> list[RuleResult] | Retry:
        results: list[RuleResult] = []
        for rule in validation.rules:
            if rule.kind == "llm_judge":
                judged = await self._judged(validation, rule)
                if isinstance(judged, Retry):
                    return judged
                results.append(judged)
            else:
                results.append(local_result(rule, validation.output))
        return results

    async def _judged(self, validation: Validation, rule: Rule) -> RuleResult | Retry:
        recorded = validation.judge_replies.get(rule.id)
        if recorded is not None:
            return judge_result(rule, recorded)  # paid for once: a metered call is settled before it is recorded
        name, rubric = rule.params.get("agent"), rule.params.get("rubric")
        if not isinstance(name, str) or not isinstance(rubric, str):
            return judge_failed(rule, "parameters 'agent' and 'rubric' must be texts")
        agent = await self._judge_agent(validation, name)
        if isinstance(agent, Retry):
            return agent
        if agent is None:
            return judge_failed(rule, f"judge agent {name!r} is not registered in this tenant (or is archived)")
        chain = judge_chain(agent, rubric, validation.output)
        limits = await self.budgets.limits_of(validation.tenant_id, self._ctx(validation).at)
        if limits is not None:
            refused = await self._reserve(validation, rule, agent, chain, limits)
            if refused is not None:
                return refused
        try:
            reply, _ = await complete_with_fallback(self.llm, chain)
        except LlmError as error:
            if limits is not None:  # a call that got no reply used nothing
                contended = await self._settle(validation, rule, 0, Decimal(0))
                if contended is not None:
                    return contended
            return await self._call_failed(validation, rule, agent, error)
        cost = self.prices.cost(reply.provider, reply.model, reply.tokens_in, reply.tokens_out)
        # Settled before the reply is recorded: a recorded reply has always been charged, so reusing it never
        # charges again, and a worker dying in between leaves no reservation behind.
        if limits is not None:
            contended = await self._settle(validation, rule, reply.tokens_in + reply.tokens_out, cost)
            if contended is not None:
                return contended
        text = reply.text.replace("\x00", "")  # stored events are JSON; the verdict is read from what is stored
        await record_judgement(
            self.store,
            self._ctx(validation),
            RecordJudgement(
                validation_id=validation.id,
                rule_id=rule.id,
                agent_id=agent.id,
                agent_config_version=agent.config_version,
                provider=reply.provider,
                model=reply.model,
                tokens_in=reply.tokens_in,
                tokens_out=reply.tokens_out,
                cost=cost,
                latency_ms=reply.latency_ms,
                reply=text,
            ),
        )
        return judge_result(rule, text)

    async def _reserve(
        self, validation: Validation, rule: Rule, agent: Agent, chain: list[LlmRequest], limits: BudgetLimits
    ) -> RuleResult | Retry | None:
        """Holds the call's worst case on the tenant's budget, or fails the rule before any call; None when the
        call may go. A redelivery finds the reservation it already holds (the key is the validation's and rule's)."""
        tokens, cost = worst_case_of(chain, self.prices)
        reservation = ReserveBudget(
            run_id=judge_charge_id(validation.id, rule.id),
            day=day_of(validation.created_at),
            tokens=tokens,
            cost=cost,
            limits=limits,
            charge="judge",
        )
        try:
            await reserve_budget(self.store, self._ctx(validation), reservation)
        except BudgetExhausted as exhausted:
            why = f"the tenant's budget refused the call: {exhausted.reason}"
            await self._record_failure(validation, rule, agent, why, retryable=False)
            return judge_failed(rule, f"judge {agent.name!r} was not consulted: {why}")
        except ConcurrencyError as contended:
            return Retry(after=CONTENDED_LEDGER_RETRY_SECONDS, detail=str(contended))
        return None

    async def _settle(self, validation: Validation, rule: Rule, tokens: int, cost: Decimal) -> Retry | None:
        """Replaces the call's reservation by what it used; a ledger that stays contended asks for a retry (the
        reservation is kept, and the next delivery calls again under it)."""
        settlement = SettleBudget(
            run_id=judge_charge_id(validation.id, rule.id), day=day_of(validation.created_at), tokens=tokens, cost=cost
        )
        try:
            await settle_budget(self.store, self._ctx(validation), settlement)
        except ConcurrencyError as contended:
            return Retry(after=CONTENDED_LEDGER_RETRY_SECONDS, detail=str(contended))
        return None

    async def _judge_agent(self, validation: Validation, name: str) -> Agent | Retry | None:
        agent_id = await self.names.agent(validation.tenant_id, name)
        if agent_id is None:
            # The agents read model may lag behind the store: a miss counts once it has seen the request.
            # A read model that stays behind is the infrastructure's failure, not the rule's: try again later.
            if not await self.agents_seen(await self.store.position_of(validation.id, 1)):
                return Retry(after=LAGGING_RETRY_SECONDS, detail="the agents read model is behind the request")
            agent_id = await self.names.agent(validation.tenant_id, name)
        if agent_id is None:
            return None
        try:
            agent = await self.store.get(Agent, agent_id)
        except AggregateNotFound:
            return None
        return agent if agent.tenant_id == validation.tenant_id and not agent.archived else None

    async def _call_failed(
        self, validation: Validation, rule: Rule, agent: Agent, error: LlmError
    ) -> RuleResult | Retry:
        await self._record_failure(validation, rule, agent, str(error), retryable=error.retryable)
        attempts = validation.judge_failures.get(rule.id, 0) + 1
        if error.retryable and attempts < self.max_judge_attempts:
            return Retry(after=error.retry_after, detail=str(error))
        return judge_failed(rule, f"judge {agent.name!r} could not be consulted after {attempts} attempt(s): {error}")

    async def _record_failure(
        self, validation: Validation, rule: Rule, agent: Agent, error: str, *, retryable: bool
    ) -> None:
        await record_judge_failure(
            self.store,
            self._ctx(validation),
            RecordJudgeFailure(
                validation_id=validation.id,
                rule_id=rule.id,
                agent_id=agent.id,
                provider=agent.provider,
                model=agent.model,
                error=error,
                retryable=retryable,
            ),
        )

    async def _complete(self, validation: Validation, results: list[RuleResult]) -> EvaluationResult:
        try:
            await complete_validation(
                self.store, self._ctx(validation), CompleteValidation(validation_id=validation.id, results=results)
            )
        except ConcurrencyError as raced:
            return EvaluationResult("skipped", detail=str(raced))
        except ValidationError as refused:
            latest = await self.store.get(Validation, validation.id)
            if latest.status == "completed":
                return EvaluationResult("skipped", detail=str(refused))
            log.warning("validation %s cannot be completed: %s", validation.id, refused)
            return EvaluationResult("dead", detail=str(refused))
        return EvaluationResult("completed")


def judge_chain(agent: Agent, rubric: str, output: str) -> list[LlmRequest]:
    """The judge's requests to try in turn: the agent's provider, then its fallbacks; JSON output asked of each."""
    messages = judge_messages(agent.system_prompt, rubric, output)
    endpoints = [(agent.provider, agent.model, agent.base_url)]
    endpoints += [(fallback.provider, fallback.model, fallback.base_url) for fallback in agent.fallbacks]
    return [
        LlmRequest(
            provider=provider,
            model=model,
            messages=messages,
            temperature=agent.temperature,
            max_tokens=agent.max_tokens,
            json_output=True,
            base_url=base_url,
        )
        for provider, model, base_url in endpoints
    ]


def local_result(rule: Rule, output: str) -> RuleResult:
    """A text or JSON-schema rule's result; a rule that cannot be evaluated fails, naming the error."""
    try:
        [result] = evaluate_rules([rule], output)
    except Exception as error:  # a rule that breaks (say, a schema's unresolvable $ref) must not lose the validation
        log.warning("rule %r could not be evaluated: %s", rule.id, type(error).__name__)
        message = f"rule could not be evaluated: {type(error).__name__}: {error}"
        return RuleResult(rule_id=rule.id, score=0.0, passed=False, message=message)
    return result
