"""`Validation`: one evaluation of an output against one rule set version.

Each `llm_judge` rule's call is recorded before the verdict (`JudgeConsulted`, or `JudgeCallFailed` for a call
that got no reply), so a retried evaluation reuses the replies it already paid for and counts failed calls.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, Self
from uuid import UUID

import msgspec

from domain.aggregate import Aggregate, CommandContext
from domain.events import DomainEvent, StepRef
from domain.personal import PersonalText
from domain.validation.errors import ValidationError
from domain.validation.ruleset import Rule, RuleSet
from domain.validation.scoring import RuleResult, score

ValidationStatus = Literal["requested", "completed"]


class ValidationRequested(DomainEvent, frozen=True, kw_only=True):
    ruleset_id: UUID
    ruleset_version: int
    rules: list[Rule]
    threshold: float
    subject_type: str
    subject_id: str
    output: PersonalText
    workflow_step: StepRef | None = None


class JudgeConsulted(DomainEvent, frozen=True, kw_only=True):
    rule_id: str
    agent_id: UUID
    agent_config_version: int
    provider: str
    model: str
    tokens_in: int
    tokens_out: int
    cost: Decimal
    latency_ms: int
    reply: PersonalText


class JudgeCallFailed(DomainEvent, frozen=True, kw_only=True):
    rule_id: str
    agent_id: UUID
    provider: str
    model: str
    error: str
    retryable: bool


class ValidationCompleted(DomainEvent, frozen=True, kw_only=True):
    results: list[RuleResult]
    score: float
    passed: bool
    feedback: PersonalText


class Validation(Aggregate, kw_only=True):
    creation_event = ValidationRequested

    ruleset_id: UUID
    ruleset_version: int
    rules: list[Rule]
    threshold: float
    subject_type: str
    subject_id: str
    output: str
    workflow_step: StepRef | None = None
    correlation_id: UUID  # of the request: the worker's events join the same conversation
    status: ValidationStatus = "requested"
    results: list[RuleResult] = msgspec.field(default_factory=list)
    score: float = 0.0
    passed: bool = False
    feedback: str = ""
    judge_replies: dict[str, str] = msgspec.field(default_factory=dict)  # by rule id
    judge_failures: dict[str, int] = msgspec.field(default_factory=dict)  # failed calls by rule id

    @classmethod
    def request(
        cls,
        ctx: CommandContext,
        validation_id: UUID,
        *,
        ruleset: RuleSet,
        subject_type: str,
        subject_id: str,
        output: str,
        workflow_step: StepRef | None = None,
    ) -> tuple[Self, ValidationRequested]:
        return cls._create(
            ctx,
            validation_id,
            ValidationRequested,
            ruleset_id=ruleset.id,
            ruleset_version=ruleset.ruleset_version,
            rules=ruleset.rules,
            threshold=ruleset.threshold,
            subject_type=subject_type,
            subject_id=subject_id,
            output=output,
            workflow_step=workflow_step,
        )

    def record_judgement(
        self,
        ctx: CommandContext,
        *,
        rule_id: str,
        agent_id: UUID,
        agent_config_version: int,
        provider: str,
        model: str,
        tokens_in: int,
        tokens_out: int,
        cost: Decimal,
        latency_ms: int,
        reply: str,
    ) -> list[DomainEvent]:
        """Records a judge's reply to one `llm_judge` rule, with the call's usage and cost."""
        self.check_judge_pending(rule_id)
        return [
            self._trigger(
                ctx,
                JudgeConsulted,
                rule_id=rule_id,
                agent_id=agent_id,
                agent_config_version=agent_config_version,
                provider=provider,
                model=model,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                cost=cost,
                latency_ms=latency_ms,
                reply=reply,
            )
        ]

    def record_judge_failure(
        self,
        ctx: CommandContext,
        *,
        rule_id: str,
        agent_id: UUID,
        provider: str,
        model: str,
        error: str,
        retryable: bool,
    ) -> list[DomainEvent]:
        """Records a call to a judge that got no reply."""
        self.check_judge_pending(rule_id)
        return [
            self._trigger(
                ctx,
                JudgeCallFailed,
                rule_id=rule_id,
                agent_id=agent_id,
                provider=provider,
                model=model,
                error=error,
                retryable=retryable,
            )
        ]

    def check_judge_pending(self, rule_id: str) -> None:
        self.check_open()
        if not any(rule.id == rule_id and rule.kind == "llm_judge" for rule in self.rules):
            raise ValidationError(f"validation {self.id} has no llm_judge rule {rule_id!r}")
        if rule_id in self.judge_replies:
            raise ValidationError(f"rule {rule_id!r} of validation {self.id} is already judged")

    def check_open(self) -> None:
        if self.status != "requested":
            raise ValidationError(f"validation {self.id} is already completed")

    def complete(self, ctx: CommandContext, *, results: list[RuleResult]) -> list[DomainEvent]:
        self.check_open()
        verdict = score(self.rules, self.threshold, results)
        return [
            self._trigger(
                ctx,
                ValidationCompleted,
                results=results,
                score=verdict.score,
                passed=verdict.passed,
                feedback=verdict.feedback,
            )
        ]

    @classmethod
    def created_by(cls, event: Any) -> Self:
        assert isinstance(event, ValidationRequested)
        return cls(
            **cls._identity(event),
            ruleset_id=event.ruleset_id,
            ruleset_version=event.ruleset_version,
            rules=event.rules,
            threshold=event.threshold,
            subject_type=event.subject_type,
            subject_id=event.subject_id,
            output=event.output,
            workflow_step=event.workflow_step,
            correlation_id=event.metadata.correlation_id,
        )

    def apply(self, event: Any) -> None:
        match event:
            case ValidationCompleted():
                self.status = "completed"
                self.results = event.results
                self.score = event.score
                self.passed = event.passed
                self.feedback = event.feedback
            case JudgeConsulted():
                self.judge_replies = self.judge_replies | {event.rule_id: event.reply}
            case JudgeCallFailed():
                self.judge_failures = self.judge_failures | {
                    event.rule_id: self.judge_failures.get(event.rule_id, 0) + 1
                }
            case _:
                super().apply(event)
