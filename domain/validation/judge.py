"""`llm_judge` rules: the one reply format a judge may give, parsed strictly, and the rule result it makes.

A judge must answer with exactly `{"score": <number 0..1>, "reason": "<text>"}`: no other key, no
repeated key, no text around it. Anything else fails the rule with a message saying what was wrong;
parsing never raises, so a bad reply cannot lose a validation.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from domain.validation.ruleset import DEFAULT_PASS_SCORE, Rule
from domain.validation.scoring import RuleResult

REPLY_FORMAT = '{"score": <number 0..1>, "reason": "<text>"}'
MAX_REASON = 500  # characters of the judge's reason kept in the rule's message (the full reply is on the stream)


class JudgeReply(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    score: float
    reason: str


class RepeatedKey(ValueError):
    """A JSON object that names a key twice (JSON parsers silently keep the last one)."""


def _refuse_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise RepeatedKey(f"key {repeated[0]!r} appears more than once")
    return dict(pairs)


def parse_judge_reply(text: str) -> JudgeReply | str:
    """The judge's reply, or the reason it is not exactly one valid reply object."""
    try:
        reply = msgspec.json.decode(text, type=JudgeReply)
        json.loads(text, object_pairs_hook=_refuse_repeats)
    except (msgspec.DecodeError, RepeatedKey, ValueError) as error:
        return f"the reply is not {REPLY_FORMAT}: {error}"
    if not 0.0 <= reply.score <= 1.0:
        return f"the reply's score {reply.score} is outside 0..1"
    return reply


def pass_score_of(rule: Rule) -> float:
    value = rule.params.get("pass_score", DEFAULT_PASS_SCORE)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else DEFAULT_PASS_SCORE


def judge_failed(rule: Rule, why: str) -> RuleResult:
    """The result of a judge rule that got no usable verdict: score 0, failed, saying why."""
    return RuleResult(rule_id=rule.id, score=0.0, passed=False, message=why.replace("\x00", ""))


def judge_result(rule: Rule, reply_text: str) -> RuleResult:
    """The result of a judge rule from the judge's recorded reply."""
    judge = rule.params.get("agent")
    parsed = parse_judge_reply(reply_text)
    if isinstance(parsed, str):
        return judge_failed(rule, f"judge {judge!r}: {parsed}")
    reason = parsed.reason.replace("\x00", "").strip()
    if len(reason) > MAX_REASON:
        reason = reason[: MAX_REASON - 1] + "…"
    threshold = pass_score_of(rule)
    passed = parsed.score >= threshold
    verdict = "reaches" if passed else "is below"
    message = f"judge {judge!r} scored {parsed.score:.2f}, which {verdict} {threshold:.2f}: {reason}"
    score = abs(parsed.score)  # a judge's -0.0 is 0
    return RuleResult(rule_id=rule.id, score=score, passed=passed, message=message)
