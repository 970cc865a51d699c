"""JSON-schema rules: outputs checked against their schema, bad schemas refused with the rule named."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.event_store.application import StoreApplication, memory_env
from adapters.event_store.store import EventSourcedStore
from commands import validation
from commands.rule_evaluation import evaluate_rules
from domain.validation.errors import InvalidRuleSet
from domain.validation.ruleset import Rule
from tests.strategies import Clock

TRIAGE = Rule(
    id="shape",
    kind="json_schema",
    params={
        "schema": {
            "type": "object",
            "required": ["category", "urgency"],
            "properties": {"category": {"enum": ["billing", "bug"]}, "urgency": {"type": "integer", "maximum": 5}},
        }
    },
)


def test_a_conforming_output_passes() -> None:
    [result] = evaluate_rules([TRIAGE], '{"category": "billing", "urgency": 2}')
    assert (result.passed, result.score) == (True, 1.0)


def test_a_nonconforming_output_fails_naming_where() -> None:
    [result] = evaluate_rules([TRIAGE], '{"category": "other", "urgency": 9}')
    assert not result.passed
    assert "category: 'other' is not one of" in result.message
    assert "urgency: 9 is greater than the maximum of 5" in result.message


def test_an_output_that_is_not_json_fails() -> None:
    [result] = evaluate_rules([TRIAGE], "billing, urgent")
    assert result.message.startswith("output is not JSON")


def test_llm_judge_rules_are_left_to_their_worker() -> None:
    judge = Rule(id="tone", kind="llm_judge", params={"agent": "judge", "rubric": "polite?"})
    results = evaluate_rules([TRIAGE, judge, Rule(id="pii", kind="pii")], "{}")
    assert [r.rule_id for r in results] == ["shape", "pii"]


@pytest.fixture
async def store() -> AsyncIterator[EventSourcedStore]:
    made = EventSourcedStore(StoreApplication(env=memory_env()))
    yield made
    await made.close()


async def test_a_rule_set_with_an_invalid_schema_is_refused_with_every_problem(store: EventSourcedStore) -> None:
    broken = Rule(id="broken", kind="json_schema", params={"schema": {"type": "not-a-type"}})
    with pytest.raises(InvalidRuleSet) as refused:
        await validation.define_ruleset(
            store, Clock().ctx(), validation.DefineRuleSet(name="r", rules=[broken, TRIAGE], threshold=2.0)
        )
    problems = refused.value.problems
    assert "threshold 2.0 is outside 0..1" in problems
    assert any(p.startswith("rule 'broken': schema is not valid JSON Schema") for p in problems)
