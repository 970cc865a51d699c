"""`WorkflowInstance`: one run of a template version, as a saga.

Steps go pending → running → completed | failed | skipped, and completed ones become
compensated when the saga unwinds. The instance goes running → completed | failed |
compensating → compensated, or cancelled. When a step fails for good, the plan of
compensations is fixed in the event: completed steps that define one, in reverse order of
completion, each compensated once.
"""

from __future__ import annotations

from typing import Any, Literal, Self
from uuid import UUID

import msgspec

from domain.aggregate import Aggregate, CommandContext
from domain.events import DomainEvent
from domain.workflows.definition import STEP_ID, WorkflowDefinition
from domain.workflows.errors import InvalidStepTransition, MissingInputs
from domain.workflows.template import WorkflowTemplate

InstanceStatus = Literal["running", "completed", "failed", "compensating", "compensated", "cancelled"]
StepStatus = Literal["pending", "running", "completed", "failed", "skipped", "compensated"]
DONE: frozenset[str] = frozenset({"completed", "skipped"})


class StepState(msgspec.Struct, kw_only=True):
    status: StepStatus = "pending"
    attempts: int = 0
    output: Any = None
    error: str = ""


class WorkflowInstanceStarted(DomainEvent, frozen=True, kw_only=True):
    template_id: UUID
    template_name: str
    template_version: int
    definition: WorkflowDefinition
    inputs: dict[str, Any]


class StepStarted(DomainEvent, frozen=True, kw_only=True):
    step_id: str
    attempt: int


class StepCompleted(DomainEvent, frozen=True, kw_only=True):
    step_id: str
    output: Any


class StepAttemptFailed(DomainEvent, frozen=True, kw_only=True):
    step_id: str
    attempt: int
    error: str


class StepFailed(DomainEvent, frozen=True, kw_only=True):
    step_id: str
    attempt: int
    error: str


class StepSkipped(DomainEvent, frozen=True, kw_only=True):
    step_id: str
    reason: str


class WorkflowCompleted(DomainEvent, frozen=True, kw_only=True):
    pass


class WorkflowFailed(DomainEvent, frozen=True, kw_only=True):
    reason: str


class CompensationStarted(DomainEvent, frozen=True, kw_only=True):
    failed_step: str
    reason: str
    plan: list[str]


class CompensationRecorded(DomainEvent, frozen=True, kw_only=True):
    step_id: str


class WorkflowCompensated(DomainEvent, frozen=True, kw_only=True):
    pass


class WorkflowCancelled(DomainEvent, frozen=True, kw_only=True):
    reason: str


class SignalReceived(DomainEvent, frozen=True, kw_only=True):
    """A named signal from outside (an approval, a decision) that waiting steps may act on."""

    name: str
    payload: dict[str, Any]


class WorkflowInstance(Aggregate, kw_only=True):
    creation_event = WorkflowInstanceStarted

    template_id: UUID
    template_name: str
    template_version: int
    definition: WorkflowDefinition
    inputs: dict[str, Any]
    status: InstanceStatus = "running"
    steps: dict[str, StepState] = msgspec.field(default_factory=dict)
    completion_order: list[str] = msgspec.field(default_factory=list)
    compensation_plan: list[str] = msgspec.field(default_factory=list)
    compensated: list[str] = msgspec.field(default_factory=list)
    reason: str = ""
    signals: list[str] = msgspec.field(default_factory=list)

    @classmethod
    def start(
        cls, ctx: CommandContext, instance_id: UUID, *, template: WorkflowTemplate, inputs: dict[str, Any]
    ) -> tuple[Self, WorkflowInstanceStarted]:
        template.check_active()
        missing = [name for name in template.definition.inputs if name not in inputs]
        if missing:
            raise MissingInputs(f"template {template.name!r} needs inputs {missing}")
        return cls._create(
            ctx,
            instance_id,
            WorkflowInstanceStarted,
            template_id=template.id,
            template_name=template.name,
            template_version=template.template_version,
            definition=template.definition,
            inputs=inputs,
        )

    def ready_steps(self) -> list[str]:
        """Pending steps whose every dependency is done, in definition order."""
        if self.status != "running":
            return []
        return [
            step.id
            for step in self.definition.steps
            if self.steps[step.id].status == "pending" and all(self.steps[n].status in DONE for n in step.needs)
        ]

    def next_compensation(self) -> str | None:
        if self.status != "compensating":
            return None
        return self.compensation_plan[len(self.compensated)]

    def start_step(self, ctx: CommandContext, step_id: str) -> list[DomainEvent]:
        if step_id not in self.ready_steps():
            raise InvalidStepTransition(f"step {step_id!r} is not ready to start ({self._describe(step_id)})")
        return [self._trigger(ctx, StepStarted, step_id=step_id, attempt=self.steps[step_id].attempts + 1)]

    def complete_step(self, ctx: CommandContext, step_id: str, *, output: Any) -> list[DomainEvent]:
        self._check_running_step(step_id)
        events: list[DomainEvent] = [self._trigger(ctx, StepCompleted, step_id=step_id, output=output)]
        return events + self._finish_if_done(ctx)

    def skip_step(self, ctx: CommandContext, step_id: str, *, reason: str) -> list[DomainEvent]:
        if self.status != "running" or self._step(step_id).status != "pending":
            raise InvalidStepTransition(f"step {step_id!r} cannot be skipped ({self._describe(step_id)})")
        events: list[DomainEvent] = [self._trigger(ctx, StepSkipped, step_id=step_id, reason=reason)]
        return events + self._finish_if_done(ctx)

    def fail_step(self, ctx: CommandContext, step_id: str, *, error: str) -> list[DomainEvent]:
        state = self._check_running_step(step_id)
        if state.attempts < self.definition.step(step_id).retry.max_attempts:
            return [self._trigger(ctx, StepAttemptFailed, step_id=step_id, attempt=state.attempts, error=error)]
        events: list[DomainEvent] = [
            self._trigger(ctx, StepFailed, step_id=step_id, attempt=state.attempts, error=error)
        ]
        reason = f"step {step_id!r} failed after {state.attempts} attempt(s): {error}"
        plan = [s for s in reversed(self.completion_order) if self.definition.step(s).compensate is not None]
        if plan:
            events.append(self._trigger(ctx, CompensationStarted, failed_step=step_id, reason=reason, plan=plan))
        else:
            events.append(self._trigger(ctx, WorkflowFailed, reason=reason))
        return events

    def record_compensation(self, ctx: CommandContext, step_id: str) -> list[DomainEvent]:
        expected = self.next_compensation()
        if expected != step_id:
            raise InvalidStepTransition(
                f"compensation of {step_id!r} is out of order: the next to compensate is {expected!r}"
            )
        events: list[DomainEvent] = [self._trigger(ctx, CompensationRecorded, step_id=step_id)]
        if len(self.compensated) == len(self.compensation_plan):
            events.append(self._trigger(ctx, WorkflowCompensated))
        return events

    def receive_signal(self, ctx: CommandContext, *, name: str, payload: dict[str, Any]) -> list[DomainEvent]:
        if self.status != "running":
            raise InvalidStepTransition(f"instance {self.id} is {self.status} and takes no signals")
        if not STEP_ID.match(name):
            raise InvalidStepTransition(f"signal name {name!r} must be lower-case letters, digits, '-' or '_'")
        return [self._trigger(ctx, SignalReceived, name=name, payload=payload)]

    def cancel(self, ctx: CommandContext, *, reason: str) -> list[DomainEvent]:
        if self.status != "running":
            raise InvalidStepTransition(f"instance {self.id} is {self.status} and cannot be cancelled")
        return [self._trigger(ctx, WorkflowCancelled, reason=reason)]

    def _finish_if_done(self, ctx: CommandContext) -> list[DomainEvent]:
        if all(state.status in DONE for state in self.steps.values()):
            return [self._trigger(ctx, WorkflowCompleted)]
        return []

    def _step(self, step_id: str) -> StepState:
        try:
            return self.steps[step_id]
        except KeyError:
            raise InvalidStepTransition(f"template {self.template_name!r} has no step {step_id!r}") from None

    def _check_running_step(self, step_id: str) -> StepState:
        state = self._step(step_id)
        if self.status != "running" or state.status != "running":
            raise InvalidStepTransition(f"step {step_id!r} is not running ({self._describe(step_id)})")
        return state

    def _describe(self, step_id: str) -> str:
        step = self.steps.get(step_id)
        where = f"step is {step.status}" if step else "no such step"
        return f"instance is {self.status}, {where}"

    @classmethod
    def created_by(cls, event: Any) -> Self:
        assert isinstance(event, WorkflowInstanceStarted)
        return cls(
            **cls._identity(event),
            template_id=event.template_id,
            template_name=event.template_name,
            template_version=event.template_version,
            definition=event.definition,
            inputs=event.inputs,
            steps={step.id: StepState() for step in event.definition.steps},
        )

    def apply(self, event: Any) -> None:
        match event:
            case StepStarted():
                self.steps[event.step_id].status = "running"
                self.steps[event.step_id].attempts = event.attempt
            case StepCompleted():
                self.steps[event.step_id].status = "completed"
                self.steps[event.step_id].output = event.output
                self.completion_order.append(event.step_id)
            case StepAttemptFailed():
                self.steps[event.step_id].status = "pending"
                self.steps[event.step_id].error = event.error
            case StepFailed():
                self.steps[event.step_id].status = "failed"
                self.steps[event.step_id].error = event.error
            case StepSkipped():
                self.steps[event.step_id].status = "skipped"
            case WorkflowCompleted():
                self.status = "completed"
            case WorkflowFailed():
                self.status = "failed"
                self.reason = event.reason
            case CompensationStarted():
                self.status = "compensating"
                self.reason = event.reason
                self.compensation_plan = list(event.plan)
            case CompensationRecorded():
                self.steps[event.step_id].status = "compensated"
                self.compensated.append(event.step_id)
            case WorkflowCompensated():
                self.status = "compensated"
            case WorkflowCancelled():
                self.status = "cancelled"
                self.reason = event.reason
            case SignalReceived():
                self.signals.append(event.name)
            case _:
                super().apply(event)
