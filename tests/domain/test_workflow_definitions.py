"""Workflow definitions: an invalid one is refused with every problem listed, each naming its step."""

from __future__ import annotations

from hypothesis import given

from domain.workflows.definition import (
    Compensation,
    RetryPolicy,
    StepDefinition,
    WorkflowDefinition,
    check_definition,
    definition_problems,
)
from domain.workflows.errors import InvalidWorkflowDefinition
from tests.strategies import workflow_definitions

WRITE = {"agent": "writer", "prompt": "Write."}


def agent(step_id: str, **fields: object) -> StepDefinition:
    return StepDefinition(id=step_id, kind="agent", params=WRITE, **fields)  # type: ignore[arg-type]


@given(workflow_definitions())
def test_generated_definitions_are_valid(definition: WorkflowDefinition) -> None:
    assert definition_problems(definition) == []


def test_every_problem_is_listed_with_its_step() -> None:
    definition = WorkflowDefinition(
        steps=[
            agent("draft", needs=["missing"]),
            agent("draft", retry=RetryPolicy(max_attempts=0)),
            StepDefinition(
                id="Bad Id",
                kind="notify",
                timeout_seconds=-1,
                params={"channel": "email", "recipient": "x", "template": "y"},
            ),
        ],
        inputs=["ticket", "ticket"],
    )
    try:
        check_definition(definition)
    except InvalidWorkflowDefinition as error:
        problems = error.problems
    else:
        raise AssertionError("an invalid definition was accepted")
    assert "step 'draft': needs unknown step 'missing'" in problems
    assert "step 'draft': id is used more than once" in problems
    assert "step 'draft': retry.max_attempts must be at least 1" in problems
    assert any(p.startswith("step 'Bad Id': id must be") for p in problems)
    assert "step 'Bad Id': timeout_seconds must be positive" in problems
    assert "input 'ticket' is declared more than once" in problems


def test_a_cycle_is_named_with_its_path() -> None:
    definition = WorkflowDefinition(
        steps=[
            agent("a", needs=["c"]),
            agent("b", needs=["a"]),
            agent("c", needs=["b"]),
        ]
    )
    [problem] = definition_problems(definition)
    assert problem.startswith("steps form a cycle: ")
    assert {"a", "b", "c"} <= set(problem.removeprefix("steps form a cycle: ").split(" -> "))


def test_an_empty_workflow_is_refused() -> None:
    assert definition_problems(WorkflowDefinition(steps=[])) == ["a workflow needs at least one step"]


def test_each_kind_checks_its_parameters() -> None:
    definition = WorkflowDefinition(
        steps=[
            StepDefinition(id="draft", kind="agent", params={"agent": "writer"}),
            StepDefinition(id="other", kind="agent", params={**WRITE, "output": "xml"}),
            StepDefinition(id="check", kind="validate", needs=["draft"], params={"ruleset": "q", "target": "other"}),
            StepDefinition(id="tell", kind="notify", params={"channel": "pigeon", "recipient": "x", "template": "y"}),
            StepDefinition(id="ok", kind="approval", params={"signal": "Go!", "colour": "red"}),
            StepDefinition(id="route", kind="branch", params={"condition": "true", "then": ["tell", "ghost"]}),
            agent("undo", compensate=Compensation(kind="approval")),
        ]
    )
    problems = definition_problems(definition)
    assert "step 'draft': params: Object missing required field `prompt`" in problems
    assert any(p == "step 'other': params: Invalid enum value 'xml' - at `$.output`" for p in problems), problems
    assert "step 'check': validate target 'other' must be one of its needs ['draft']" in problems
    assert any(p.startswith("step 'tell': params:") and "channel" in p for p in problems)
    assert "step 'ok': params: Object contains unknown field `colour`" in problems
    assert "step 'route': branch names unknown step 'ghost'" in problems
    assert "step 'tell': is chosen by branch 'route', so it must need it" in problems
    assert "step 'undo': compensate: kind must be one of ['agent', 'notify']" in problems
