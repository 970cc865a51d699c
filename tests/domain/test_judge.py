"""`llm_judge`: the reply format parsed strictly, the rule result it makes, and the calls a validation records."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.validation.errors import InvalidRuleSet, ValidationError
from domain.validation.judge import JudgeReply, judge_result, parse_judge_reply
from domain.validation.ruleset import Rule, RuleSet
from domain.validation.scoring import RuleResult
from domain.validation.validation import Validation
from tests.strategies import Clock

JUDGE = Rule(id="tone", kind="llm_judge", params={"agent": "critic", "rubric": "Is it polite?"})


class Pairs(list[tuple[str, Any]]):
    """An object's keys and values in order, repeats kept (so the oracle sees what a lax parser hides)."""


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def exactly_one_reply(text: str) -> bool:
    """The oracle: one JSON object with exactly the keys score (a number in 0..1) and reason (a text)."""
    try:
        value = json.loads(text, object_pairs_hook=Pairs, parse_constant=_no_constants)
    except ValueError:
        return False
    if not isinstance(value, Pairs) or sorted(key for key, _ in value) != ["reason", "score"]:
        return False
    fields = dict(value)
    score = fields["score"]
    number = isinstance(score, int | float) and not isinstance(score, bool)
    return number and 0 <= score <= 1 and isinstance(fields["reason"], str)


scores = st.floats(0, 1) | st.sampled_from([0, 1])
reasons = st.text(max_size=30)
keys = st.sampled_from(["score", "reason", "Score", "reasons", "verdict"])
values = (
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2) | reasons | st.lists(st.integers(), max_size=2)
)
near_objects = st.lists(st.tuples(keys, values), max_size=4).map(
    lambda pairs: "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}"
)
valid_objects = st.tuples(scores, reasons, st.booleans()).map(
    lambda t: json.dumps({"score": t[0], "reason": t[1]} if t[2] else {"reason": t[1], "score": t[0]})
)
wrappers = st.sampled_from(
    ["{}", " {} ", "\n{}\n", "```json\n{}\n```", "Sure! {}", "{} Hope it helps.", "[{}]", "{}{}"]
)
replies = (
    st.text(max_size=60)
    | near_objects
    | valid_objects
    | st.tuples(wrappers, valid_objects).map(lambda t: t[0].replace("{}", t[1]))
)


@given(replies)
def test_any_reply_that_is_not_exactly_one_valid_object_fails_the_rule_and_none_raises(text: str) -> None:
    parsed = parse_judge_reply(text)
    assert isinstance(parsed, JudgeReply) == exactly_one_reply(text)
    result = judge_result(JUDGE, text)
    if not isinstance(parsed, JudgeReply):
        assert (result.score, result.passed) == (0.0, False)
        assert result.message.startswith("judge 'critic': the reply")


@given(scores, reasons)
def test_a_valid_reply_passes_when_its_score_reaches_the_pass_score(score: float, reason: str) -> None:
    result = judge_result(JUDGE, json.dumps({"score": score, "reason": reason}))
    assert result.score == score
    assert result.passed == (score >= 0.5)
    assert "\x00" not in result.message


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ('{"score": 0.9}', "missing required field `reason`"),
        ('{"score": 0.9, "reason": "ok", "confidence": 1}', "unknown field `confidence`"),
        ('{"score": "0.9", "reason": "ok"}', "Expected `float`, got `str`"),
        ('{"score": 0.2, "score": 0.9, "reason": "ok"}', "key 'score' appears more than once"),
        ('```json\n{"score": 0.9, "reason": "ok"}\n```', "JSON is malformed"),
        ('{"score": 1.5, "reason": "ok"}', "score 1.5 is outside 0..1"),
    ],
)
def test_a_bad_reply_is_named_with_what_is_wrong(reply: str, why: str) -> None:
    result = judge_result(JUDGE, reply)
    assert (result.score, result.passed) == (0.0, False)
    assert why in result.message


def test_the_pass_score_is_the_rules_own() -> None:
    strict = Rule(id="tone", kind="llm_judge", params={**JUDGE.params, "pass_score": 0.9})
    result = judge_result(strict, '{"score": 0.8, "reason": "Mostly polite."}')
    assert not result.passed
    assert result.message == "judge 'critic' scored 0.80, which is below 0.90: Mostly polite."


def test_a_judge_rule_needs_an_agent_a_rubric_and_a_pass_score_within_0_and_1() -> None:
    with pytest.raises(InvalidRuleSet) as refused:
        RuleSet.define(
            Clock().ctx(),
            UUID(int=1),
            name="r",
            threshold=0.5,
            rules=[
                Rule(id="a", kind="llm_judge", params={"rubric": "x"}),
                Rule(id="b", kind="llm_judge", params={"agent": " ", "rubric": "x", "pass_score": 2}),
                Rule(id="c", kind="llm_judge", params={"agent": "j", "rubric": 3, "pass_score": True}),
            ],
        )
    assert refused.value.problems == [
        "rule 'a': parameter 'agent' is missing",
        "rule 'b': parameter 'agent' must be a non-empty text (the judge agent's name)",
        "rule 'b': parameter 'pass_score' must be a number within 0..1, not 2",
        "rule 'c': parameter 'rubric' must be a non-empty text (what the judge scores against)",
        "rule 'c': parameter 'pass_score' must be a number within 0..1, not True",
    ]


def opened(clock: Clock) -> Validation:
    rules = [JUDGE, Rule(id="pii", kind="pii")]
    ruleset, _ = RuleSet.define(clock.ctx(), UUID(int=1), name="r", threshold=0.5, rules=rules)
    validation, _ = Validation.request(
        clock.ctx(), UUID(int=2), ruleset=ruleset, subject_type="agent_run", subject_id="x", output="Hello!"
    )
    return validation


CALL: dict[str, Any] = {"agent_id": UUID(int=3), "provider": "scripted", "model": "judge-1"}


def judged(validation: Validation, clock: Clock, rule_id: str = "tone") -> None:
    validation.record_judgement(
        clock.ctx(),
        rule_id=rule_id,
        **CALL,
        agent_config_version=1,
        tokens_in=40,
        tokens_out=9,
        cost=Decimal("0.00001"),
        latency_ms=12,
        reply='{"score": 1, "reason": "Polite."}',
    )


def test_a_judge_is_consulted_once_per_rule_and_its_failed_calls_are_counted() -> None:
    clock = Clock()
    validation = opened(clock)
    for _ in range(2):
        validation.record_judge_failure(clock.ctx(), rule_id="tone", **CALL, error="429", retryable=True)
    judged(validation, clock)
    assert validation.judge_failures == {"tone": 2}
    assert validation.judge_replies == {"tone": '{"score": 1, "reason": "Polite."}'}
    with pytest.raises(ValidationError, match="already judged"):
        judged(validation, clock)
    with pytest.raises(ValidationError, match="no llm_judge rule 'pii'"):
        judged(validation, clock, rule_id="pii")


def test_no_judge_is_recorded_after_the_verdict() -> None:
    clock = Clock()
    validation = opened(clock)
    validation.complete(
        clock.ctx(), results=[judge_result(JUDGE, "{}"), RuleResult(rule_id="pii", score=1.0, passed=True)]
    )
    assert validation.feedback.startswith("score 0.50 against threshold 0.50: passed")
    with pytest.raises(ValidationError, match="already completed"):
        judged(validation, clock)
