"""Scoring: per-rule results weighed into one score, a verdict and feedback naming each failed rule."""

from __future__ import annotations

import msgspec

from domain.personal import PersonalText
from domain.validation.errors import ValidationError
from domain.validation.ruleset import Rule


class RuleResult(msgspec.Struct, frozen=True, kw_only=True):
    rule_id: str
    score: float
    passed: bool
    message: PersonalText = ""  # a judge's reason, or a rule's finding that may quote the output


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    score: float
    passed: bool
    feedback: str


def score(rules: list[Rule], threshold: float, results: list[RuleResult]) -> Verdict:
    """The weighted mean of the rule scores, passed when it reaches the threshold."""
    by_rule = {result.rule_id: result for result in results}
    expected = {rule.id for rule in rules}
    if len(by_rule) != len(results) or set(by_rule) != expected:
        raise ValidationError(f"results must cover each rule exactly once: expected {sorted(expected)}")
    for result in results:
        if not 0.0 <= result.score <= 1.0:
            raise ValidationError(f"rule {result.rule_id!r}: score {result.score} is outside 0..1")
    total_weight = sum(rule.weight for rule in rules)
    weighted = sum(rule.weight * by_rule[rule.id].score for rule in rules) / total_weight
    value = round(min(1.0, max(0.0, weighted)), 6)
    failed = [by_rule[rule.id] for rule in rules if not by_rule[rule.id].passed]
    passed = value >= threshold
    lines = [f"score {value:.2f} against threshold {threshold:.2f}: {'passed' if passed else 'failed'}"]
    lines.extend(f"- rule {r.rule_id!r} failed" + (f": {r.message}" if r.message else "") for r in failed)
    return Verdict(score=value, passed=passed, feedback="\n".join(lines))
