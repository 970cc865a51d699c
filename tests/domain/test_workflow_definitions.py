"""Workflow definitions: an invalid one is refused with every problem listed, each naming its step."""

from __future__ import annotations

from hypothesis import given

from domain.workflows.definition import (
    RetryPolicy,
    StepDefinition,
    WorkflowDefinition,
    check_definition,
    definition_problems,
)
from domain.workflows.errors import InvalidWorkflowDefinition
from tests.strategies import workflow_definitions


@given(workflow_definitions())
def test_generated_definitions_are_valid(definition: WorkflowDefinition) -> None:
    assert definition_problems(definition) == []


def test_every_problem_is_listed_with_its_step() -> None:
    definition = WorkflowDefinition(
        steps=[
            StepDefinition(id="draft", kind="agent", needs=["missing"]),
            StepDefinition(id="draft", kind="agent", retry=RetryPolicy(max_attempts=0)),
            StepDefinition(id="Bad Id", kind="notify", timeout_seconds=-1),
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
            StepDefinition(id="a", kind="agent", needs=["c"]),
            StepDefinition(id="b", kind="agent", needs=["a"]),
            StepDefinition(id="c", kind="agent", needs=["b"]),
        ]
    )
    [problem] = definition_problems(definition)
    assert problem.startswith("steps form a cycle: ")
    assert {"a", "b", "c"} <= set(problem.removeprefix("steps form a cycle: ").split(" -> "))


def test_an_empty_workflow_is_refused() -> None:
    assert definition_problems(WorkflowDefinition(steps=[])) == ["a workflow needs at least one step"]
