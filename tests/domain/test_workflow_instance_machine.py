"""A rule-based state machine drives `WorkflowInstance` over random DAGs with random step outcomes."""

from __future__ import annotations

from uuid import UUID

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from domain.events import DomainEvent
from domain.workflows.definition import WorkflowDefinition
from domain.workflows.errors import InvalidStepTransition
from domain.workflows.instance import DONE, CompensationRecorded, StepCompleted, WorkflowInstance
from tests.strategies import Clock, json_values, new_template, workflow_definitions

FINAL = {"completed", "failed", "compensated", "cancelled"}


class WorkflowInstanceMachine(RuleBasedStateMachine):
    instance: WorkflowInstance

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.events: list[DomainEvent] = []
        self.final_status: str | None = None

    @initialize(definition=workflow_definitions())
    def start(self, definition: WorkflowDefinition) -> None:
        template = new_template(self.clock, definition)
        self.instance, first = WorkflowInstance.start(
            self.clock.ctx(), UUID(int=3), template=template, inputs=dict.fromkeys(definition.inputs, "x")
        )
        self.events.append(first)

    def decide(self, decision: object) -> None:
        version_before = self.instance.version
        try:
            assert callable(decision)
            self.events.extend(decision())
        except InvalidStepTransition:
            assert self.instance.version == version_before

    def step_ids(self) -> list[str]:
        return [step.id for step in self.instance.definition.steps]

    def running_or_any(self, data: st.DataObject) -> str:
        """Mostly a running step, so that runs go deep; sometimes any step, to exercise refusals."""
        running = [s for s, state in self.instance.steps.items() if state.status == "running"]
        if running and data.draw(st.integers(0, 9)) > 0:
            return data.draw(st.sampled_from(running))
        return data.draw(st.sampled_from(self.step_ids()))

    @rule(data=st.data())
    def start_a_ready_step(self, data: st.DataObject) -> None:
        ready = self.instance.ready_steps()
        if ready:
            step_id = data.draw(st.sampled_from(ready))
            self.decide(lambda: self.instance.start_step(self.clock.ctx(), step_id))

    @rule(data=st.data())
    def run_a_ready_step_to_completion(self, data: st.DataObject) -> None:
        ready = self.instance.ready_steps()
        if ready:
            step_id = data.draw(st.sampled_from(ready))
            self.decide(lambda: self.instance.start_step(self.clock.ctx(), step_id))
            self.decide(lambda: self.instance.complete_step(self.clock.ctx(), step_id, output="done"))

    @rule(data=st.data())
    def a_ready_step_fails_every_attempt(self, data: st.DataObject) -> None:
        ready = self.instance.ready_steps()
        if ready:
            step_id = data.draw(st.sampled_from(ready))
            for _ in range(self.instance.definition.step(step_id).retry.max_attempts):
                self.decide(lambda: self.instance.start_step(self.clock.ctx(), step_id))
                self.decide(lambda: self.instance.fail_step(self.clock.ctx(), step_id, error="down"))
            assert self.instance.steps[step_id].status == "failed"
            assert self.instance.status in {"failed", "compensating", "compensated"}

    @rule(data=st.data(), output=json_values)
    def complete_a_running_step(self, data: st.DataObject, output: object) -> None:
        step_id = self.running_or_any(data)
        self.decide(lambda: self.instance.complete_step(self.clock.ctx(), step_id, output=output))

    @rule(data=st.data())
    def fail_a_running_step(self, data: st.DataObject) -> None:
        step_id = self.running_or_any(data)
        self.decide(lambda: self.instance.fail_step(self.clock.ctx(), step_id, error="boom"))

    @rule(data=st.data())
    def skip_a_step(self, data: st.DataObject) -> None:
        if data.draw(st.integers(0, 3)):
            return
        step_id = data.draw(st.sampled_from(self.step_ids()))
        self.decide(lambda: self.instance.skip_step(self.clock.ctx(), step_id, reason="branch"))

    @precondition(lambda self: self.instance.status == "compensating")
    @rule()
    def compensate_the_next_step(self) -> None:
        step_id = self.instance.next_compensation()
        assert step_id is not None
        self.decide(lambda: self.instance.record_compensation(self.clock.ctx(), step_id))

    @rule(data=st.data())
    def compensate_out_of_order(self, data: st.DataObject) -> None:
        step_id = data.draw(st.sampled_from(self.step_ids()))
        if step_id != self.instance.next_compensation():
            written = len(self.events)
            self.decide(lambda: self.instance.record_compensation(self.clock.ctx(), step_id))
            assert len(self.events) == written, "a compensation out of order was recorded"

    @rule(chance=st.integers(0, 19))
    def cancel(self, chance: int) -> None:
        if chance != 7:  # rare: a cancelled instance ends the interesting part of a run
            return
        self.decide(lambda: self.instance.cancel(self.clock.ctx(), reason="user"))

    def teardown(self) -> None:
        plan = len(self.instance.compensation_plan) if hasattr(self, "instance") else 0
        event(f"ended {self.instance.status if hasattr(self, 'instance') else '-'}, plan of {min(plan, 2)}+")

    @invariant()
    def a_finished_instance_stays_finished(self) -> None:
        if self.final_status is not None:
            assert self.instance.status == self.final_status
        elif self.instance.status in FINAL:
            self.final_status = self.instance.status

    @invariant()
    def completed_means_every_step_is_done(self) -> None:
        statuses = [state.status for state in self.instance.steps.values()]
        if self.instance.status == "completed":
            assert all(status in DONE for status in statuses)
        if self.instance.status == "running":
            assert "failed" not in statuses
            assert "compensated" not in statuses

    @invariant()
    def compensation_runs_in_reverse_completion_order_once_per_step(self) -> None:
        completed_order = [e.step_id for e in self.events if isinstance(e, StepCompleted)]
        compensated = [e.step_id for e in self.events if isinstance(e, CompensationRecorded)]
        assert len(compensated) == len(set(compensated))
        with_compensation = [
            s for s in reversed(completed_order) if self.instance.definition.step(s).compensate is not None
        ]
        assert compensated == with_compensation[: len(compensated)]
        if self.instance.status == "compensated":
            assert compensated == with_compensation

    @invariant()
    def a_step_starts_only_after_its_needs_are_done(self) -> None:
        for step in self.instance.definition.steps:
            if self.instance.steps[step.id].status in {"running", "completed"}:
                assert all(self.instance.steps[need].status in DONE | {"compensated"} for need in step.needs)

    @invariant()
    def replay_equals_live(self) -> None:
        if self.events:
            assert WorkflowInstance.project(self.events) == self.instance


WorkflowInstanceMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestWorkflowInstanceMachine = WorkflowInstanceMachine.TestCase
