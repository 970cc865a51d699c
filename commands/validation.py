"""Commands and handlers of the validation context."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import msgspec

from commands.ports import EventStore
from commands.results import CommandResult
from commands.rule_evaluation import evaluate_rules, schema_problems
from commands.unit_of_work import change, create, load, new_aggregate_id
from domain.aggregate import CommandContext
from domain.events import StepRef
from domain.validation.errors import InvalidRuleSet
from domain.validation.ruleset import Rule, RuleSet, ruleset_problems
from domain.validation.scoring import RuleResult
from domain.validation.validation import Validation


class DefineRuleSet(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    rules: list[Rule]
    threshold: float
    idempotency_key: str | None = None


class ReviseRuleSet(msgspec.Struct, frozen=True, kw_only=True):
    ruleset_id: UUID
    rules: list[Rule]
    threshold: float
    expected_version: int | None = None


class RequestValidation(msgspec.Struct, frozen=True, kw_only=True):
    ruleset_id: UUID
    subject_type: str
    subject_id: str
    output: str
    idempotency_key: str | None = None
    workflow_step: StepRef | None = None


class CompleteValidation(msgspec.Struct, frozen=True, kw_only=True):
    validation_id: UUID
    results: list[RuleResult]


class RecordJudgement(msgspec.Struct, frozen=True, kw_only=True):
    validation_id: UUID
    rule_id: str
    agent_id: UUID
    agent_config_version: int
    provider: str
    model: str
    tokens_in: int
    tokens_out: int
    cost: Decimal
    latency_ms: int
    reply: str


class RecordJudgeFailure(msgspec.Struct, frozen=True, kw_only=True):
    validation_id: UUID
    rule_id: str
    agent_id: UUID
    provider: str
    model: str
    error: str
    retryable: bool


async def define_ruleset(store: EventStore, ctx: CommandContext, cmd: DefineRuleSet) -> CommandResult:
    """Defines a rule set at version 1."""
    check_rules(cmd.rules, cmd.threshold)
    ruleset, event = RuleSet.define(
        ctx,
        new_aggregate_id(ctx, RuleSet, cmd.idempotency_key),
        name=cmd.name,
        rules=cmd.rules,
        threshold=cmd.threshold,
    )
    return await create(store, ruleset, event)


async def revise_ruleset(store: EventStore, ctx: CommandContext, cmd: ReviseRuleSet) -> CommandResult:
    """Publishes a new version of a rule set."""
    check_rules(cmd.rules, cmd.threshold)
    return await change(
        store,
        RuleSet,
        cmd.ruleset_id,
        ctx,
        lambda ruleset: ruleset.revise(ctx, rules=cmd.rules, threshold=cmd.threshold),
        expected_version=cmd.expected_version,
    )


async def request_validation(store: EventStore, ctx: CommandContext, cmd: RequestValidation) -> CommandResult:
    """Opens a validation of an output against the rule set's current version."""
    ruleset = await load(store, RuleSet, cmd.ruleset_id, ctx)
    validation, event = Validation.request(
        ctx,
        new_aggregate_id(ctx, Validation, cmd.idempotency_key),
        ruleset=ruleset,
        subject_type=cmd.subject_type,
        subject_id=cmd.subject_id,
        output=cmd.output,
        workflow_step=cmd.workflow_step,
    )
    return await create(store, validation, event)


async def complete_validation(store: EventStore, ctx: CommandContext, cmd: CompleteValidation) -> CommandResult:
    """Scores the per-rule results and records the verdict."""
    return await change(
        store,
        Validation,
        cmd.validation_id,
        ctx,
        lambda validation: validation.complete(ctx, results=cmd.results),
    )


async def record_judgement(store: EventStore, ctx: CommandContext, cmd: RecordJudgement) -> CommandResult:
    """Records a judge's reply to an `llm_judge` rule, with the call's usage and cost."""
    call = msgspec.structs.asdict(cmd)
    del call["validation_id"]
    return await change(
        store, Validation, cmd.validation_id, ctx, lambda validation: validation.record_judgement(ctx, **call)
    )


async def record_judge_failure(store: EventStore, ctx: CommandContext, cmd: RecordJudgeFailure) -> CommandResult:
    """Records a call to a judge that got no reply."""
    call = msgspec.structs.asdict(cmd)
    del call["validation_id"]
    return await change(
        store, Validation, cmd.validation_id, ctx, lambda validation: validation.record_judge_failure(ctx, **call)
    )


def evaluate_local_rules(rules: list[Rule], output: str) -> list[RuleResult]:
    """Results of the rules that need no LLM (text rules and JSON schemas); `llm_judge` is left to its worker."""
    return evaluate_rules(rules, output)


def check_rules(rules: list[Rule], threshold: float) -> None:
    """The model's checks plus the JSON schemas' validity, every problem listed in one refusal."""
    problems = ruleset_problems(rules, threshold) + schema_problems(rules)
    if problems:
        raise InvalidRuleSet(problems)
