"""Evaluation of the rules that need nothing but the text: regex, length, contains, not_contains, pii.

`json_schema` and `llm_judge` need a schema library or an LLM and are evaluated outside the model;
their results come into `Validation.complete` like any other.
"""

from __future__ import annotations

import re

from domain.validation.ruleset import Rule
from domain.validation.scoring import RuleResult

LOCAL_KINDS = frozenset({"regex", "length", "contains", "not_contains", "pii"})

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?<![\w+])\+?\d[\d ().-]{7,}\d(?!\w)")
CARD = re.compile(r"(?<!\d)(?:\d[ -]?){13,19}(?!\d)")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def find_pii(text: str) -> list[str]:
    """The kinds of personal data found in the text: email, phone, card."""
    found: list[str] = []
    if EMAIL.search(text):
        found.append("email")
    cards = [re.sub(r"\D", "", m.group()) for m in CARD.finditer(text)]
    if any(luhn_valid(card) for card in cards):
        found.append("card")
    if any(not luhn_valid(re.sub(r"\D", "", m.group())) for m in PHONE.finditer(text)):
        found.append("phone")
    return found


def evaluate(rule: Rule, text: str) -> RuleResult:
    """Applies one local rule to a text."""
    params = rule.params
    match rule.kind:
        case "regex":
            ok = re.search(str(params["pattern"]), text) is not None
            message = "" if ok else f"text does not match /{params['pattern']}/"
        case "length":
            low, high = int(params.get("min", 0)), int(params.get("max", 1 << 31))
            ok = low <= len(text) <= high
            message = "" if ok else f"length {len(text)} is outside {low}..{high}"
        case "contains":
            ok = str(params["text"]).casefold() in text.casefold()
            message = "" if ok else f"text does not contain {params['text']!r}"
        case "not_contains":
            ok = str(params["text"]).casefold() not in text.casefold()
            message = "" if ok else f"text contains {params['text']!r}"
        case "pii":
            kinds = find_pii(text)
            ok = not kinds
            message = "" if ok else "text contains personal data: " + ", ".join(kinds)
        case _:
            raise ValueError(f"rule kind {rule.kind!r} is not evaluated locally")
    return RuleResult(rule_id=rule.id, score=1.0 if ok else 0.0, passed=ok, message=message)
