"""`RuleSet`: weighted rules and a pass threshold, versioned on each revision."""

from __future__ import annotations

import re
from typing import Any, Literal, Self
from uuid import UUID

import msgspec

from domain.aggregate import Aggregate, CommandContext
from domain.events import DomainEvent
from domain.validation.errors import InvalidRuleSet, ValidationError

RuleKind = Literal["regex", "json_schema", "length", "contains", "not_contains", "pii", "llm_judge"]


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: RuleKind
    weight: float = 1.0
    params: dict[str, Any] = msgspec.field(default_factory=dict)


DEFAULT_PASS_SCORE = 0.5  # an `llm_judge` rule passes when the judge's score reaches it

REQUIRED_PARAMS: dict[str, tuple[str, ...]] = {
    "regex": ("pattern",),
    "json_schema": ("schema",),
    "contains": ("text",),
    "not_contains": ("text",),
    "llm_judge": ("agent", "rubric"),
}


def ruleset_problems(rules: list[Rule], threshold: float) -> list[str]:
    """Every problem of a rule set, each naming its rule, or an empty list."""
    problems: list[str] = []
    if not rules:
        problems.append("a rule set needs at least one rule")
    if not 0.0 <= threshold <= 1.0:
        problems.append(f"threshold {threshold} is outside 0..1")
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            problems.append(f"rule {rule.id!r}: id is used more than once")
        seen.add(rule.id)
        if not rule.weight > 0:
            problems.append(f"rule {rule.id!r}: weight must be positive")
        problems.extend(
            f"rule {rule.id!r}: parameter {name!r} is missing"
            for name in REQUIRED_PARAMS.get(rule.kind, ())
            if name not in rule.params
        )
        if rule.kind == "regex" and isinstance(rule.params.get("pattern"), str):
            try:
                re.compile(rule.params["pattern"])
            except re.error as error:
                problems.append(f"rule {rule.id!r}: pattern does not compile: {error}")
        if rule.kind == "llm_judge":
            problems.extend(f"rule {rule.id!r}: {problem}" for problem in judge_param_problems(rule.params))
    return problems


def judge_param_problems(params: dict[str, Any]) -> list[str]:
    problems = [
        f"parameter {name!r} must be a non-empty text ({what})"
        for name, what in (("agent", "the judge agent's name"), ("rubric", "what the judge scores against"))
        if name in params and not (isinstance(params[name], str) and params[name].strip())
    ]
    pass_score = params.get("pass_score", DEFAULT_PASS_SCORE)
    if isinstance(pass_score, bool) or not isinstance(pass_score, int | float) or not 0.0 <= pass_score <= 1.0:
        problems.append(f"parameter 'pass_score' must be a number within 0..1, not {pass_score!r}")
    return problems


def check_ruleset(rules: list[Rule], threshold: float) -> None:
    problems = ruleset_problems(rules, threshold)
    if problems:
        raise InvalidRuleSet(problems)


class RuleSetDefined(DomainEvent, frozen=True, kw_only=True):
    name: str
    rules: list[Rule]
    threshold: float


class RuleSetRevised(DomainEvent, frozen=True, kw_only=True):
    ruleset_version: int
    rules: list[Rule]
    threshold: float


class RuleSet(Aggregate, kw_only=True):
    creation_event = RuleSetDefined

    name: str
    rules: list[Rule]
    threshold: float
    ruleset_version: int

    @classmethod
    def define(
        cls, ctx: CommandContext, ruleset_id: UUID, *, name: str, rules: list[Rule], threshold: float
    ) -> tuple[Self, RuleSetDefined]:
        if not name.strip():
            raise ValidationError("a rule set needs a name")
        check_ruleset(rules, threshold)
        return cls._create(ctx, ruleset_id, RuleSetDefined, name=name, rules=rules, threshold=threshold)

    def revise(self, ctx: CommandContext, *, rules: list[Rule], threshold: float) -> list[DomainEvent]:
        check_ruleset(rules, threshold)
        return [
            self._trigger(
                ctx, RuleSetRevised, ruleset_version=self.ruleset_version + 1, rules=rules, threshold=threshold
            )
        ]

    @classmethod
    def created_by(cls, event: Any) -> Self:
        assert isinstance(event, RuleSetDefined)
        return cls(
            **cls._identity(event), name=event.name, rules=event.rules, threshold=event.threshold, ruleset_version=1
        )

    def apply(self, event: Any) -> None:
        match event:
            case RuleSetRevised():
                self.ruleset_version = event.ruleset_version
                self.rules = event.rules
                self.threshold = event.threshold
            case _:
                super().apply(event)
