"""Validation: rule sets, scoring and the rules that need only the text."""

from __future__ import annotations

from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.validation.errors import InvalidRuleSet, ValidationError
from domain.validation.rules import evaluate, find_pii
from domain.validation.ruleset import Rule, RuleSet
from domain.validation.scoring import RuleResult, score
from domain.validation.validation import Validation
from tests.strategies import Clock, rule_results, rules


@given(data=st.data(), rule_list=rules(), threshold=st.floats(0, 1))
def test_the_score_is_a_weighted_mean_between_0_and_1_and_decides_the_verdict(
    data: st.DataObject, rule_list: list[Rule], threshold: float
) -> None:
    results = data.draw(rule_results(rule_list))
    verdict = score(rule_list, threshold, results)
    assert 0.0 <= verdict.score <= 1.0
    assert verdict.passed == (verdict.score >= threshold)
    for result in results:
        assert (f"rule {result.rule_id!r} failed" in verdict.feedback) == (not result.passed)


def test_results_must_cover_each_rule_once() -> None:
    rule_list = [Rule(id="a", kind="pii"), Rule(id="b", kind="pii")]
    with pytest.raises(ValidationError, match="exactly once"):
        score(rule_list, 0.5, [RuleResult(rule_id="a", score=1, passed=True)])


def test_weights_count() -> None:
    rule_list = [Rule(id="a", kind="pii", weight=3), Rule(id="b", kind="pii", weight=1)]
    results = [RuleResult(rule_id="a", score=1, passed=True), RuleResult(rule_id="b", score=0, passed=False)]
    verdict = score(rule_list, 0.7, results)
    assert verdict.score == 0.75
    assert verdict.passed


def test_an_invalid_rule_set_lists_every_problem() -> None:
    with pytest.raises(InvalidRuleSet) as refused:
        RuleSet.define(
            Clock().ctx(),
            UUID(int=1),
            name="r",
            threshold=1.5,
            rules=[Rule(id="x", kind="regex", params={"pattern": "("}), Rule(id="x", kind="contains", weight=0)],
        )
    problems = refused.value.problems
    assert "threshold 1.5 is outside 0..1" in problems
    assert any(p.startswith("rule 'x': pattern does not compile") for p in problems)
    assert "rule 'x': id is used more than once" in problems
    assert "rule 'x': weight must be positive" in problems
    assert "rule 'x': parameter 'text' is missing" in problems


def test_a_validation_is_scored_once_against_the_rule_set_version_it_was_opened_with() -> None:
    clock = Clock()
    ruleset, _ = RuleSet.define(clock.ctx(), UUID(int=1), name="r", threshold=0.5, rules=[Rule(id="a", kind="pii")])
    validation, _ = Validation.request(
        clock.ctx(), UUID(int=2), ruleset=ruleset, subject_type="agent_run", subject_id="x", output="hello"
    )
    ruleset.revise(clock.ctx(), rules=[Rule(id="b", kind="pii")], threshold=0.9)
    validation.complete(clock.ctx(), results=[evaluate(validation.rules[0], validation.output)])
    assert (validation.ruleset_version, validation.passed, validation.score) == (1, True, 1.0)
    with pytest.raises(ValidationError, match="already completed"):
        validation.complete(clock.ctx(), results=[])


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("write to ada@example.org", ["email"]),
        ("card 4111 1111 1111 1111 please", ["card"]),
        ("call +44 20 7946 0958", ["phone"]),
        ("order 1234 shipped", []),
    ],
)
def test_personal_data_is_found(text: str, kinds: list[str]) -> None:
    assert find_pii(text) == kinds


def test_local_rules_explain_their_failures() -> None:
    assert (
        evaluate(Rule(id="l", kind="length", params={"min": 10}), "short").message
        == "length 5 is outside 10..2147483648"
    )
    assert evaluate(Rule(id="c", kind="contains", params={"text": "Refund"}), "a refund").passed
    assert not evaluate(Rule(id="n", kind="not_contains", params={"text": "as an AI"}), "As an AI, I").passed
    assert evaluate(Rule(id="r", kind="regex", params={"pattern": r"^\d+$"}), "123").score == 1.0
