"""Workflow instances as sagas: given a template, when steps run, then events."""

from __future__ import annotations

from uuid import UUID

import pytest

from domain.workflows.definition import Compensation, RetryPolicy, StepDefinition, WorkflowDefinition
from domain.workflows.errors import InvalidStepTransition, MissingInputs
from domain.workflows.instance import (
    CompensationStarted,
    StepAttemptFailed,
    StepFailed,
    WorkflowCompensated,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowInstance,
)
from tests.strategies import Clock, new_template

UNDO = Compensation(kind="notify", params={"template": "undo"})


def four_steps(*, retries: int = 1) -> WorkflowDefinition:
    return WorkflowDefinition(
        inputs=["ticket"],
        steps=[
            StepDefinition(id="a", kind="agent", compensate=UNDO),
            StepDefinition(id="b", kind="agent", needs=["a"], compensate=UNDO),
            StepDefinition(id="c", kind="validate", needs=["b"]),
            StepDefinition(id="d", kind="notify", needs=["c"], retry=RetryPolicy(max_attempts=retries)),
        ],
    )


def started(clock: Clock, definition: WorkflowDefinition) -> WorkflowInstance:
    instance, _ = WorkflowInstance.start(
        clock.ctx(), UUID(int=9), template=new_template(clock, definition), inputs={"ticket": "t"}
    )
    return instance


def run(clock: Clock, instance: WorkflowInstance, step_id: str) -> list[object]:
    return [*instance.start_step(clock.ctx(), step_id), *instance.complete_step(clock.ctx(), step_id, output=step_id)]


def test_an_instance_without_its_inputs_is_refused() -> None:
    clock = Clock()
    with pytest.raises(MissingInputs, match="ticket"):
        WorkflowInstance.start(clock.ctx(), UUID(int=1), template=new_template(clock, four_steps()), inputs={})


def test_a_step_cannot_start_before_its_needs() -> None:
    clock = Clock()
    instance = started(clock, four_steps())
    with pytest.raises(InvalidStepTransition, match="not ready"):
        instance.start_step(clock.ctx(), "b")


def test_the_last_step_completes_the_instance() -> None:
    clock = Clock()
    instance = started(clock, four_steps())
    for step_id in "abc":
        run(clock, instance, step_id)
    events = run(clock, instance, "d")
    assert isinstance(events[-1], WorkflowCompleted)
    assert instance.status == "completed"


def test_a_failed_step_compensates_completed_steps_in_reverse_order() -> None:
    clock = Clock()
    instance = started(clock, four_steps())
    for step_id in "abc":
        run(clock, instance, step_id)
    instance.start_step(clock.ctx(), "d")
    failed, compensation = instance.fail_step(clock.ctx(), "d", error="smtp down")
    assert isinstance(failed, StepFailed)
    assert isinstance(compensation, CompensationStarted)
    assert compensation.plan == ["b", "a"]  # c defines no compensation
    with pytest.raises(InvalidStepTransition, match="out of order"):
        instance.record_compensation(clock.ctx(), "a")
    instance.record_compensation(clock.ctx(), "b")
    *_, done = instance.record_compensation(clock.ctx(), "a")
    assert isinstance(done, WorkflowCompensated)
    assert instance.status == "compensated"
    with pytest.raises(InvalidStepTransition):
        instance.record_compensation(clock.ctx(), "a")


def test_a_step_with_retries_left_goes_back_to_pending() -> None:
    clock = Clock()
    instance = started(clock, four_steps(retries=2))
    for step_id in "abc":
        run(clock, instance, step_id)
    instance.start_step(clock.ctx(), "d")
    [event] = instance.fail_step(clock.ctx(), "d", error="timeout")
    assert isinstance(event, StepAttemptFailed)
    assert instance.ready_steps() == ["d"]
    [restarted] = instance.start_step(clock.ctx(), "d")
    assert restarted.attempt == 2  # type: ignore[attr-defined]


def test_a_failure_with_nothing_to_compensate_fails_the_instance() -> None:
    clock = Clock()
    instance = started(clock, four_steps())
    instance.start_step(clock.ctx(), "a")
    _, outcome = instance.fail_step(clock.ctx(), "a", error="bad")
    assert isinstance(outcome, WorkflowFailed)
    assert instance.status == "failed"


def test_an_instance_stays_pinned_to_the_template_version_it_started_with() -> None:
    clock = Clock()
    template = new_template(clock, four_steps())
    instance, _ = WorkflowInstance.start(clock.ctx(), UUID(int=1), template=template, inputs={"ticket": "t"})
    template.revise(clock.ctx(), definition=WorkflowDefinition(steps=[StepDefinition(id="only", kind="notify")]))
    assert (instance.template_version, template.template_version) == (1, 2)
    assert [s.id for s in instance.definition.steps] == ["a", "b", "c", "d"]
