"""Evaluating rules on an output: the text-only kinds (in the domain) and `json_schema` (with jsonschema).

`llm_judge` needs an agent's opinion and is evaluated by the validation worker; it is left out here.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from domain.validation.rules import LOCAL_KINDS, evaluate
from domain.validation.ruleset import Rule
from domain.validation.scoring import RuleResult

MAX_REPORTED = 3


def schema_problems(rules: list[Rule]) -> list[str]:
    """Every `json_schema` rule whose schema is not a valid JSON Schema (2020-12)."""
    problems = []
    for rule in rules:
        if rule.kind == "json_schema" and "schema" in rule.params:
            try:
                Draft202012Validator.check_schema(rule.params["schema"])
            except SchemaError as error:
                problems.append(f"rule {rule.id!r}: schema is not valid JSON Schema: {error.message}")
    return problems


def json_schema_result(rule: Rule, output: str) -> RuleResult:
    try:
        document: Any = json.loads(output)
    except json.JSONDecodeError as error:
        return RuleResult(rule_id=rule.id, score=0.0, passed=False, message=f"output is not JSON: {error.msg}")
    validator = Draft202012Validator(rule.params["schema"])
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if not errors:
        return RuleResult(rule_id=rule.id, score=1.0, passed=True)
    shown = "; ".join(
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors[:MAX_REPORTED]
    )
    more = f" (+{len(errors) - MAX_REPORTED} more)" if len(errors) > MAX_REPORTED else ""
    return RuleResult(rule_id=rule.id, score=0.0, passed=False, message=shown + more)


def evaluate_rules(rules: list[Rule], output: str) -> list[RuleResult]:
    """Results of every rule that needs no LLM, in the rule set's order."""
    results = []
    for rule in rules:
        if rule.kind in LOCAL_KINDS:
            results.append(evaluate(rule, output))
        elif rule.kind == "json_schema":
            results.append(json_schema_result(rule, output))
    return results
