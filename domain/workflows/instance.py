"""`WorkflowInstance`: one run of a template version, as a saga.

Steps go pending → running → completed | failed | skipped, and completed ones become
compensated when the saga unwinds. The instance goes running → completed | failed |
compensating → compensated, or cancelled. When a step fails for good, the plan of
compensations is fixed in the event: completed steps that define one, in reverse order of
completion, each compensated once.

The instance takes the time only from the command context: a failed attempt waits out its
backoff (`not_before`), a running step times out once `ctx.at` passes its deadline. The
orchestrator (commands/orchestrator.py) asks for these decisions; the rules live here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal, Self
from uuid import UUID

import msgspec

from domain.aggregate import Aggregate, CommandContext
from domain.events import DomainEvent
from domain.personal import PersonalData, PersonalDict, PersonalText
from domain.workflows.definition import STEP_ID, ApprovalParams, BranchParams, ValidateParams, WorkflowDefinition
from domain.workflows.errors import InvalidStepTransition, MissingInputs
from domain.workflows.template import WorkflowTemplate

InstanceStatus = Literal["running", "completed", "failed", "compensating", "compensated", "cancelled"]
StepStatus = Literal["pending", "running", "completed", "failed", "skipped", "compensated"]
DONE: frozenset[str] = frozenset({"completed", "skipped"})
FINAL: frozenset[str] = frozenset({"completed", "failed", "compensated", "cancelled"})


class StepState(msgspec.Struct, kw_only=True):
    status: StepStatus = "pending"
    attempts: int = 0  # starts, whatever their outcome
    failures: int = 0  # failed attempts, counted against the retry policy
    output: Any = None
    error: str = ""
    started_at: datetime | None = None
    not_before: datetime | None = None  # a backoff or a deferral: the step waits until then
    feedback: str = ""  # a validation's feedback for the next attempt of this step
    feedback_retries: int = 0  # of a validate step: how often it sent its target back


class WorkflowInstanceStarted(DomainEvent, frozen=True, kw_only=True):
    template_id: UUID
    template_name: str
    template_version: int
    definition: WorkflowDefinition
    inputs: PersonalDict


class StepStarted(DomainEvent, frozen=True, kw_only=True):
    step_id: str
    attempt: int


class StepCompleted(DomainEvent, frozen=True, kw_only=True):
    step_id: str
    output: PersonalData


class StepAttemptFailed(DomainEvent, frozen=True, kw_only=True):
    step_id: str
    attempt: int
    error: PersonalText  # may quote a validation's feedback
    retry_at: datetime | None = None


class StepDeferred(DomainEvent, frozen=True, kw_only=True):
    """A running step gives way until a time (a budget that resets); it does not count as a failure."""

    step_id: str
    attempt: int
    reason: str
    until: datetime


class StepRetriedWithFeedback(DomainEvent, frozen=True, kw_only=True):
    """A validate step sends its target back with the feedback; the target and what follows it run again."""

    step_id: str
    target: str
    feedback: PersonalText
    reset: list[str]


class NotificationRequested(DomainEvent, frozen=True, kw_only=True):
    """A message to deliver, rendered; the notifications worker delivers it."""

    step_id: str
    channel: str
    recipient: PersonalText
    subject: PersonalText
    body: PersonalText
    compensation: bool = False


class StepFailed(DomainEvent, frozen=True, kw_only=True):
    step_id: str
    attempt: int
    error: PersonalText  # may quote a validation's feedback


class StepSkipped(DomainEvent, frozen=True, kw_only=True):
    step_id: str
    reason: str


class WorkflowCompleted(DomainEvent, frozen=True, kw_only=True):
    pass


class WorkflowFailed(DomainEvent, frozen=True, kw_only=True):
    reason: PersonalText  # names the failed step's error


class CompensationStarted(DomainEvent, frozen=True, kw_only=True):
    failed_step: str
    reason: PersonalText  # names the failed step's error
    plan: list[str]


class CompensationRecorded(DomainEvent, frozen=True, kw_only=True):
    step_id: str
    error: str = ""  # a compensation that failed is recorded too, so that the saga ends and a human looks


class WorkflowCompensated(DomainEvent, frozen=True, kw_only=True):
    pass


class WorkflowCancelled(DomainEvent, frozen=True, kw_only=True):
    reason: str


class SignalReceived(DomainEvent, frozen=True, kw_only=True):
    """A named signal from outside (an approval, a decision) that waiting steps may act on."""

    name: str
    payload: PersonalDict
    roles: list[str] = msgspec.field(default_factory=list)  # of the sender


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
    correlation_id: UUID  # of the request that started it: every command issued for it joins it

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

    def ready_steps(self, now: datetime | None = None) -> list[str]:
        """Pending steps whose every dependency is done and whose wait (if any) is over at `now`."""
        if self.status != "running":
            return []
        return [
            step.id
            for step in self.definition.steps
            if self.steps[step.id].status == "pending"
            and all(self.steps[n].status in DONE for n in step.needs)
            and not self._waits(step.id, now)
        ]

    def _waits(self, step_id: str, now: datetime | None) -> bool:
        not_before = self.steps[step_id].not_before
        return now is not None and not_before is not None and now < not_before

    def running_steps(self) -> list[str]:
        return [step.id for step in self.definition.steps if self.steps[step.id].status == "running"]

    def deadline(self, step_id: str) -> datetime | None:
        """When the running step times out, if it has a timeout."""
        state = self._step(step_id)
        timeout = self.definition.step(step_id).timeout_seconds
        if state.status != "running" or timeout is None or state.started_at is None:
            return None
        return state.started_at + timedelta(seconds=timeout)

    def wake_ups(self) -> list[datetime]:
        """The times at which something becomes due: a deadline, or the end of a wait."""
        times = [self.deadline(step_id) for step_id in self.running_steps()]
        if self.status == "running":
            times += [state.not_before for state in self.steps.values() if state.status == "pending"]
        return sorted(t for t in times if t is not None)

    def next_compensation(self) -> str | None:
        if self.status != "compensating":
            return None
        return self.compensation_plan[len(self.compensated)]

    def start_step(self, ctx: CommandContext, step_id: str) -> list[DomainEvent]:
        if step_id not in self.ready_steps(ctx.at):
            raise InvalidStepTransition(f"step {step_id!r} is not ready to start ({self._describe(step_id)})")
        return [self._trigger(ctx, StepStarted, step_id=step_id, attempt=self.steps[step_id].attempts + 1)]

    def start_ready_steps(self, ctx: CommandContext) -> list[DomainEvent]:
        """Starts every ready step: independent steps run in parallel."""
        return [event for step_id in self.ready_steps(ctx.at) for event in self.start_step(ctx, step_id)]

    def complete_step(self, ctx: CommandContext, step_id: str, *, output: Any) -> list[DomainEvent]:
        self._check_running_step(step_id)
        events: list[DomainEvent] = [self._trigger(ctx, StepCompleted, step_id=step_id, output=output)]
        return events + self._finish_if_done(ctx)

    def skip_step(self, ctx: CommandContext, step_id: str, *, reason: str) -> list[DomainEvent]:
        if self.status != "running" or self._step(step_id).status != "pending":
            raise InvalidStepTransition(f"step {step_id!r} cannot be skipped ({self._describe(step_id)})")
        events: list[DomainEvent] = [self._trigger(ctx, StepSkipped, step_id=step_id, reason=reason)]
        return events + self._finish_if_done(ctx)

    def fail_step(
        self, ctx: CommandContext, step_id: str, *, error: str, retry: bool = True, compensate: bool = True
    ) -> list[DomainEvent]:
        """A failed attempt: retried after its backoff while the policy allows, else the saga unwinds."""
        state = self._check_running_step(step_id)
        policy = self.definition.step(step_id).retry
        if retry and state.failures + 1 < policy.max_attempts:
            delay = policy.backoff_seconds * 2**state.failures
            retry_at = ctx.at + timedelta(seconds=delay) if delay > 0 else None
            return [
                self._trigger(
                    ctx, StepAttemptFailed, step_id=step_id, attempt=state.attempts, error=error, retry_at=retry_at
                )
            ]
        events: list[DomainEvent] = [
            self._trigger(ctx, StepFailed, step_id=step_id, attempt=state.attempts, error=error)
        ]
        reason = f"step {step_id!r} failed after {state.attempts} attempt(s): {error}"
        plan = [s for s in reversed(self.completion_order) if self.definition.step(s).compensate is not None]
        if plan and compensate:
            events.append(self._trigger(ctx, CompensationStarted, failed_step=step_id, reason=reason, plan=plan))
        else:
            events.append(self._trigger(ctx, WorkflowFailed, reason=reason))
        return events

    def time_out(self, ctx: CommandContext, step_id: str) -> list[DomainEvent]:
        """A running step past its deadline fails (an approval may be approved by its timeout instead)."""
        deadline = self.deadline(step_id)
        if deadline is None or ctx.at < deadline:
            raise InvalidStepTransition(f"step {step_id!r} has not timed out ({self._describe(step_id)})")
        step = self.definition.step(step_id)
        if step.kind == "approval":
            params: ApprovalParams = self.definition.params(step_id)
            if params.on_timeout == "approve":
                return self.complete_step(ctx, step_id, output={"approved": True, "by": "timeout"})
            return self.fail_step(ctx, step_id, error=f"no {params.signal!r} signal within the timeout", retry=False)
        return self.fail_step(ctx, step_id, error=f"timed out after {step.timeout_seconds:g} s")

    def defer_step(self, ctx: CommandContext, step_id: str, *, until: datetime, reason: str) -> list[DomainEvent]:
        state = self._check_running_step(step_id)
        return [self._trigger(ctx, StepDeferred, step_id=step_id, attempt=state.attempts, reason=reason, until=until)]

    def retry_with_feedback(self, ctx: CommandContext, step_id: str, *, feedback: str) -> list[DomainEvent]:
        """A validate step that failed sends its target back, if its retries allow; else it fails."""
        state = self._check_running_step(step_id)
        params = self.definition.params(step_id)
        if not isinstance(params, ValidateParams):
            raise InvalidStepTransition(f"step {step_id!r} is not a validate step")
        if params.on_failure != "retry" or state.feedback_retries >= params.max_retries:
            error = f"validation failed: {feedback}"
            return self.fail_step(ctx, step_id, error=error, retry=False, compensate=params.on_failure != "fail")
        reset = [params.target, *self.definition.dependents(params.target)]
        reset = [s for s in reset if self.steps[s].status != "pending"]
        return [
            self._trigger(
                ctx, StepRetriedWithFeedback, step_id=step_id, target=params.target, feedback=feedback, reset=reset
            )
        ]

    def complete_branch(self, ctx: CommandContext, step_id: str, *, taken: bool) -> list[DomainEvent]:
        """Records the branch's decision and skips the steps of the way not taken."""
        self._check_running_step(step_id)
        params = self.definition.params(step_id)
        if not isinstance(params, BranchParams):
            raise InvalidStepTransition(f"step {step_id!r} is not a branch step")
        events: list[DomainEvent] = [self._trigger(ctx, StepCompleted, step_id=step_id, output={"taken": taken})]
        for skipped in params.otherwise if taken else params.then:
            if self.steps[skipped].status == "pending":
                reason = f"branch {step_id!r} went the other way"
                events.append(self._trigger(ctx, StepSkipped, step_id=skipped, reason=reason))
        return events + self._finish_if_done(ctx)

    def request_notification(
        self, ctx: CommandContext, step_id: str, *, channel: str, recipient: str, subject: str, body: str
    ) -> list[DomainEvent]:
        """A notify step: the rendered message is recorded for delivery and the step is done."""
        self._check_running_step(step_id)
        events: list[DomainEvent] = [
            self._trigger(
                ctx,
                NotificationRequested,
                step_id=step_id,
                channel=channel,
                recipient=recipient,
                subject=subject,
                body=body,
            )
        ]
        return events + self.complete_step(ctx, step_id, output={"channel": channel, "requested": True})

    def record_compensation(self, ctx: CommandContext, step_id: str, *, error: str = "") -> list[DomainEvent]:
        expected = self.next_compensation()
        if expected != step_id:
            raise InvalidStepTransition(
                f"compensation of {step_id!r} is out of order: the next to compensate is {expected!r}"
            )
        events: list[DomainEvent] = [self._trigger(ctx, CompensationRecorded, step_id=step_id, error=error)]
        if len(self.compensated) == len(self.compensation_plan):
            events.append(self._trigger(ctx, WorkflowCompensated))
        return events

    def compensate_with_notification(
        self, ctx: CommandContext, step_id: str, *, channel: str, recipient: str, subject: str, body: str
    ) -> list[DomainEvent]:
        """A compensation that is a message: recorded for delivery, and the step counts as compensated."""
        if self.next_compensation() != step_id:
            raise InvalidStepTransition(f"step {step_id!r} is not the next to compensate")
        events: list[DomainEvent] = [
            self._trigger(
                ctx,
                NotificationRequested,
                step_id=step_id,
                channel=channel,
                recipient=recipient,
                subject=subject,
                body=body,
                compensation=True,
            )
        ]
        return events + self.record_compensation(ctx, step_id)

    def receive_signal(
        self, ctx: CommandContext, *, name: str, payload: dict[str, Any], roles: list[str] | None = None
    ) -> list[DomainEvent]:
        """Records a signal; a running approval step that waits for it is answered (approved unless
        the payload says `"approved": false`). A signal nothing waits for is recorded and changes nothing."""
        if self.status != "running":
            raise InvalidStepTransition(f"instance {self.id} is {self.status} and takes no signals")
        if not STEP_ID.match(name):
            raise InvalidStepTransition(f"signal name {name!r} must be lower-case letters, digits, '-' or '_'")
        sender_roles = sorted(roles or [])
        waiting = [s for s in self.running_steps() if self.definition.step(s).kind == "approval"]
        answered = [s for s in waiting if self.definition.params(s).signal == name]
        for step_id in answered:
            needed = self.definition.params(step_id).role
            if needed not in sender_roles and "admin" not in sender_roles:
                raise InvalidStepTransition(f"step {step_id!r} needs the {needed!r} role to answer {name!r}")
        events: list[DomainEvent] = [self._trigger(ctx, SignalReceived, name=name, payload=payload, roles=sender_roles)]
        for step_id in answered:
            if self.status != "running":
                break
            if payload.get("approved", True) is False:
                events += self.fail_step(ctx, step_id, error=f"rejected by {ctx.actor}", retry=False)
            else:
                output = {"approved": True, "by": ctx.actor, "comment": str(payload.get("comment", ""))}
                events += self.complete_step(ctx, step_id, output=output)
        return events

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
            correlation_id=event.metadata.correlation_id,
        )

    def apply(self, event: Any) -> None:
        match event:
            case StepStarted():
                state = self.steps[event.step_id]
                state.status, state.attempts = "running", event.attempt
                state.started_at, state.not_before = event.timestamp, None
            case StepCompleted():
                self.steps[event.step_id].status = "completed"
                self.steps[event.step_id].output = event.output
                self.completion_order.append(event.step_id)
            case StepAttemptFailed():
                state = self.steps[event.step_id]
                state.status, state.error, state.not_before = "pending", event.error, event.retry_at
                state.failures += 1
            case StepDeferred():
                state = self.steps[event.step_id]
                state.status, state.error, state.not_before = "pending", event.reason, event.until
            case StepRetriedWithFeedback():
                for step_id in event.reset:
                    self.steps[step_id].status = "pending"
                    self.steps[step_id].output = None
                self.completion_order = [s for s in self.completion_order if s not in event.reset]
                self.steps[event.target].feedback = event.feedback
                self.steps[event.step_id].feedback_retries += 1
            case NotificationRequested():
                pass
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
