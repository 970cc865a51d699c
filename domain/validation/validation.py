"""`Validation`: one evaluation of an output against one rule set version."""

from __future__ import annotations

from typing import Any, Literal, Self
from uuid import UUID

import msgspec

from domain.aggregate import Aggregate, CommandContext
from domain.events import DomainEvent, StepRef
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
    output: str
    workflow_step: StepRef | None = None


class ValidationCompleted(DomainEvent, frozen=True, kw_only=True):
    results: list[RuleResult]
    score: float
    passed: bool
    feedback: str


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
    status: ValidationStatus = "requested"
    results: list[RuleResult] = msgspec.field(default_factory=list)
    score: float = 0.0
    passed: bool = False
    feedback: str = ""

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

    def complete(self, ctx: CommandContext, *, results: list[RuleResult]) -> list[DomainEvent]:
        if self.status != "requested":
            raise ValidationError(f"validation {self.id} is already completed")
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
        )

    def apply(self, event: Any) -> None:
        match event:
            case ValidationCompleted():
                self.status = "completed"
                self.results = event.results
                self.score = event.score
                self.passed = event.passed
                self.feedback = event.feedback
            case _:
                super().apply(event)
