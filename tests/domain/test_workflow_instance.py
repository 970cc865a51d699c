"""Workflow instances as sagas: given a template, when steps run, then events."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from domain.workflows.definition import RetryPolicy, StepDefinition, WorkflowDefinition
from domain.workflows.errors import InvalidStepTransition, MissingInputs
from domain.workflows.instance import (
    CompensationStarted,
    NotificationRequested,
    SignalReceived,
    StepAttemptFailed,
    StepCompleted,
    StepFailed,
    StepRetriedWithFeedback,
    WorkflowCompensated,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowInstance,
)
from tests.strategies import UNDO, Clock, new_template

WRITE = {"agent": "writer", "prompt": "Write about {{ inputs.ticket }}"}
TELL = {"channel": "email", "recipient": "ops@example.com", "template": "done"}


def four_steps(*, retries: int = 1) -> WorkflowDefinition:
    return WorkflowDefinition(
        inputs=["ticket"],
        steps=[
            StepDefinition(id="a", kind="agent", params=WRITE, compensate=UNDO),
            StepDefinition(id="b", kind="agent", params=WRITE, needs=["a"], compensate=UNDO),
            StepDefinition(id="c", kind="validate", params={"ruleset": "q", "target": "b"}, needs=["b"]),
            StepDefinition(id="d", kind="notify", params=TELL, needs=["c"], retry=RetryPolicy(max_attempts=retries)),
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
    template.revise(
        clock.ctx(), definition=WorkflowDefinition(steps=[StepDefinition(id="only", kind="notify", params=TELL)])
    )
    assert (instance.template_version, template.template_version) == (1, 2)
    assert [s.id for s in instance.definition.steps] == ["a", "b", "c", "d"]


def steps_of(*steps: StepDefinition) -> WorkflowDefinition:
    return WorkflowDefinition(inputs=["ticket"], steps=list(steps))


def test_a_failed_attempt_waits_out_its_exponential_backoff() -> None:
    clock = Clock()
    retry = RetryPolicy(max_attempts=3, backoff_seconds=10)
    instance = started(clock, steps_of(StepDefinition(id="a", kind="agent", params=WRITE, retry=retry)))
    instance.start_step(clock.ctx(), "a")
    [failed] = instance.fail_step(ctx := clock.ctx(), "a", error="429")
    assert isinstance(failed, StepAttemptFailed)
    assert failed.retry_at == ctx.at + timedelta(seconds=10)
    assert instance.ready_steps(ctx.at + timedelta(seconds=9)) == []
    assert instance.wake_ups() == [failed.retry_at]
    with pytest.raises(InvalidStepTransition):
        instance.start_step(clock.ctx(), "a")
    assert instance.ready_steps(failed.retry_at) == ["a"]
    clock.ticks += 10
    instance.start_step(clock.ctx(), "a")
    [second] = instance.fail_step(ctx := clock.ctx(), "a", error="429")
    assert isinstance(second, StepAttemptFailed)
    assert second.retry_at == ctx.at + timedelta(seconds=20)


def test_a_running_step_times_out_only_after_its_deadline() -> None:
    clock = Clock()
    instance = started(clock, steps_of(StepDefinition(id="a", kind="agent", params=WRITE, timeout_seconds=30)))
    [begun] = instance.start_step(clock.ctx(), "a")
    assert instance.deadline("a") == begun.timestamp + timedelta(seconds=30)
    with pytest.raises(InvalidStepTransition, match="has not timed out"):
        instance.time_out(clock.ctx(), "a")
    clock.ticks += 30
    events = instance.time_out(clock.ctx(), "a")
    assert [type(e) for e in events] == [StepFailed, WorkflowFailed]
    assert instance.steps["a"].error == "timed out after 30 s"


def approval(**params: object) -> StepDefinition:
    return StepDefinition(id="ok", kind="approval", needs=["a"], params=params, timeout_seconds=60)


def test_an_approval_is_answered_by_a_signal_from_its_role() -> None:
    clock = Clock()
    instance = started(clock, steps_of(StepDefinition(id="a", kind="agent", params=WRITE), approval(signal="go")))
    run(clock, instance, "a")
    instance.start_step(clock.ctx(), "ok")
    with pytest.raises(InvalidStepTransition, match="needs the 'operator' role"):
        instance.receive_signal(clock.ctx(), name="go", payload={}, roles=["viewer"])
    instance.receive_signal(clock.ctx(), name="other", payload={}, roles=["operator"])
    assert instance.steps["ok"].status == "running"
    events = instance.receive_signal(clock.ctx("bob"), name="go", payload={"comment": "fine"}, roles=["operator"])
    assert [type(e) for e in events] == [SignalReceived, StepCompleted, WorkflowCompleted]
    assert instance.steps["ok"].output == {"approved": True, "by": "bob", "comment": "fine"}


def test_a_rejection_or_a_timeout_fails_the_approval_and_unwinds() -> None:
    clock = Clock()
    definition = steps_of(StepDefinition(id="a", kind="agent", params=WRITE, compensate=UNDO), approval())
    rejected = started(clock, definition)
    run(clock, rejected, "a")
    rejected.start_step(clock.ctx(), "ok")
    rejected.receive_signal(clock.ctx("bob"), name="approval", payload={"approved": False}, roles=["admin"])
    assert (rejected.status, rejected.steps["ok"].error) == ("compensating", "rejected by bob")

    for on_timeout, status in (("reject", "compensating"), ("approve", "completed")):
        instance = started(clock, steps_of(definition.steps[0], approval(on_timeout=on_timeout)))
        run(clock, instance, "a")
        instance.start_step(clock.ctx(), "ok")
        clock.ticks += 60
        instance.time_out(clock.ctx(), "ok")
        assert instance.status == status


def feedback_loop(on_failure: str, max_retries: int = 1) -> WorkflowDefinition:
    check = {"ruleset": "q", "target": "draft", "on_failure": on_failure, "max_retries": max_retries}
    return steps_of(
        StepDefinition(id="draft", kind="agent", params=WRITE, compensate=UNDO),
        StepDefinition(id="check", kind="validate", needs=["draft"], params=check),
        StepDefinition(id="tell", kind="notify", needs=["check"], params=TELL),
    )


def test_a_failed_validation_sends_its_target_back_with_the_feedback_then_gives_up() -> None:
    clock = Clock()
    instance = started(clock, feedback_loop("retry"))
    run(clock, instance, "draft")
    instance.start_step(clock.ctx(), "check")
    [retried] = instance.retry_with_feedback(clock.ctx(), "check", feedback="rule 'polite' failed")
    assert isinstance(retried, StepRetriedWithFeedback)
    assert retried.reset == ["draft", "check"]
    assert instance.steps["draft"].feedback == "rule 'polite' failed"
    assert instance.completion_order == []
    assert instance.ready_steps() == ["draft"]
    run(clock, instance, "draft")
    instance.start_step(clock.ctx(), "check")
    events = instance.retry_with_feedback(clock.ctx(), "check", feedback="still rude")
    assert [type(e) for e in events] == [StepFailed, CompensationStarted]
    assert instance.compensation_plan == ["draft"]


def test_a_validation_that_fails_without_compensation_fails_the_instance() -> None:
    clock = Clock()
    instance = started(clock, feedback_loop("fail"))
    run(clock, instance, "draft")
    instance.start_step(clock.ctx(), "check")
    events = instance.retry_with_feedback(clock.ctx(), "check", feedback="bad")
    assert [type(e) for e in events] == [StepFailed, WorkflowFailed]


def test_a_branch_skips_the_way_not_taken() -> None:
    clock = Clock()
    route = {"condition": "true", "then": ["urgent"], "otherwise": ["calm"]}
    instance = started(
        clock,
        steps_of(
            StepDefinition(id="route", kind="branch", params=route),
            StepDefinition(id="urgent", kind="notify", needs=["route"], params=TELL),
            StepDefinition(id="calm", kind="notify", needs=["route"], params=TELL),
        ),
    )
    instance.start_step(clock.ctx(), "route")
    events = instance.complete_branch(clock.ctx(), "route", taken=False)
    assert [type(e).__name__ for e in events] == ["StepCompleted", "StepSkipped"]
    assert instance.steps["urgent"].status == "skipped"
    assert instance.ready_steps() == ["calm"]


def test_a_notify_step_records_the_message_and_completes() -> None:
    clock = Clock()
    instance = started(clock, steps_of(StepDefinition(id="tell", kind="notify", params=TELL)))
    instance.start_step(clock.ctx(), "tell")
    events = instance.request_notification(
        clock.ctx(), "tell", channel="email", recipient="a@b.c", subject="Hi", body="Done"
    )
    assert [type(e) for e in events] == [NotificationRequested, StepCompleted, WorkflowCompleted]


def test_a_deferred_step_waits_without_spending_a_retry() -> None:
    clock = Clock()
    instance = started(clock, steps_of(StepDefinition(id="a", kind="agent", params=WRITE)))
    instance.start_step(clock.ctx(), "a")
    until = clock.ctx().at + timedelta(hours=1)
    instance.defer_step(clock.ctx(), "a", until=until, reason="budget")
    assert instance.ready_steps(until - timedelta(seconds=1)) == []
    assert instance.ready_steps(until) == ["a"]
    assert instance.steps["a"].failures == 0
