"""The workflow orchestrator: a process manager that moves each instance forward.

It is level-triggered: whatever woke it — an event of the instance, the end of one of its runs or
validations, a durable timer — it loads the instance, looks at what each running step waits for, and
issues the next commands. Runs and validations get ids derived from (instance, step, attempt), so
asking twice creates one; an orchestrator killed anywhere and started again finds the same state and
does the same next thing, never a thing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from commands.agents import CancelAgentRun, RequestAgentRun, cancel_agent_run, request_agent_run
from commands.errors import AggregateNotFound, ConcurrencyError
from commands.ports import EventStore, Names, Timers
from commands.templates import TemplateProblem, holds, render
from commands.unit_of_work import new_aggregate_id
from commands.validation import RequestValidation, request_validation
from domain.agents.agent_run import TERMINAL, AgentRun
from domain.aggregate import Aggregate, CommandContext, DomainError
from domain.envelope import Envelope
from domain.events import DomainEvent, StepRef
from domain.validation.validation import Validation
from domain.workflows.definition import AgentParams, Compensation, NotifyParams, ValidateParams
from domain.workflows.instance import StepStarted, WorkflowInstance

log = logging.getLogger(__name__)
ORCHESTRATOR = "orchestrator"
MAX_PASSES = 20  # decisions that unlock further decisions (a branch, a quick step) within one wake-up
MAX_CONFLICTS = 8
MAX_REMEMBERED = 100_000
A = TypeVar("A", bound=Aggregate)

# Events that may change what an instance waits for; its own StepStarted etc. need no second look.
RUN_ENDINGS = frozenset({"AgentRunSucceeded", "AgentRunFailed", "AgentRunCancelled", "AgentRunRefused"})
FEEDBACK_NOTE = "\n\nA reviewer rejected the previous answer:\n{feedback}\nRevise the answer accordingly."


def variables(instance: WorkflowInstance, step_id: str | None = None) -> dict[str, Any]:
    """What templates see: the inputs, the outputs of completed steps, and this step's feedback."""
    return {
        "inputs": instance.inputs,
        "outputs": {sid: state.output for sid, state in instance.steps.items() if state.status == "completed"},
        "feedback": instance.steps[step_id].feedback if step_id else "",
        "instance_id": str(instance.id),
    }


def as_text(output: Any) -> str:
    return output if isinstance(output, str) else json.dumps(output, sort_keys=True)


def parse_json_output(text: str) -> Any:
    """A JSON answer, allowing the Markdown fence models like to wrap it in."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    return json.loads(body)


@dataclass(frozen=True)
class Orchestrator:
    store: EventStore
    names: Names
    timers: Timers
    clock: Callable[[], datetime]
    concurrency: int = 64
    # The step each child serves, as this process asked for it: saves loading the child to find out.
    asked: dict[UUID, StepRef] = field(default_factory=dict)
    # Timers this process has written, so that each later wake-up does not write them again.
    scheduled: dict[tuple[UUID, datetime], bool] = field(default_factory=dict)
    locks: dict[UUID, tuple[asyncio.Lock, int]] = field(default_factory=dict)

    # -- what wakes it ---------------------------------------------------------------------------

    async def handle(self, envelopes: Sequence[Envelope]) -> None:
        """A batch from the bus: each instance it concerns is reconciled once, instances in parallel."""
        instances: dict[UUID, UUID] = {}  # instance → the event that woke it
        children: list[Envelope] = []
        for envelope in envelopes:
            if envelope.aggregate == "WorkflowInstance" and envelope.actor != ORCHESTRATOR:
                instances[envelope.stream_id] = envelope.event_id
            elif envelope.type in RUN_ENDINGS or envelope.type == "ValidationCompleted":
                children.append(envelope)
        for envelope, ref in zip(children, await self._gather(self._step_of(e) for e in children), strict=True):
            if ref is not None:
                instances[ref.instance_id] = envelope.event_id
        await self._gather(self.reconcile(instance_id, cause) for instance_id, cause in instances.items())

    async def _step_of(self, envelope: Envelope) -> StepRef | None:
        if (known := self.asked.pop(envelope.stream_id, None)) is not None:
            return known
        kind: type[AgentRun] | type[Validation] = Validation if envelope.aggregate == "Validation" else AgentRun
        child = await self._find(kind, envelope.stream_id)
        return child.workflow_step if child is not None else None

    async def _gather(self, work: Iterable[Any], *, errors: bool = False) -> list[Any]:
        gate = asyncio.Semaphore(self.concurrency)

        async def limited(job: Any) -> Any:
            async with gate:
                return await job

        return list(await asyncio.gather(*(limited(job) for job in work), return_exceptions=errors))

    async def reconcile_all(self, instance_ids: Iterable[UUID]) -> None:
        """Reconciles many instances, in parallel; one that fails is logged and left to its next wake-up."""
        outcomes = await self._gather((self.reconcile(i) for i in instance_ids), errors=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                log.warning("reconciling an instance failed: %s", outcome)

    async def reconcile(self, instance_id: UUID, cause: UUID | None = None, *, due: datetime | None = None) -> None:
        """Moves one instance as far as it can go now; `due` is the time of the timer that woke it."""
        async with self._alone(instance_id):
            await self._reconcile_retrying(instance_id, cause, due)

    @contextlib.asynccontextmanager
    async def _alone(self, instance_id: UUID) -> AsyncIterator[None]:
        """One wake-up of an instance at a time in this process: the next one sees what this one wrote."""
        lock, users = self.locks.get(instance_id, (asyncio.Lock(), 0))
        self.locks[instance_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self.locks[instance_id]
            if users == 1:
                del self.locks[instance_id]
            else:
                self.locks[instance_id] = (lock, users - 1)

    async def _reconcile_retrying(self, instance_id: UUID, cause: UUID | None, due: datetime | None) -> None:
        for _ in range(MAX_CONFLICTS):
            try:
                await self._reconcile(instance_id, cause, due)
                return
            except ConcurrencyError:
                continue  # someone else wrote to the instance (a signal, another wake-up): look again
        raise ConcurrencyError(f"instance {instance_id} kept changing under the orchestrator")

    # -- deciding --------------------------------------------------------------------------------

    async def _reconcile(self, instance_id: UUID, cause: UUID | None, due: datetime | None) -> None:
        instance = await self._find(WorkflowInstance, instance_id)
        if instance is None:
            return
        fresh: set[str] = set()  # steps this wake-up started: they have no child yet
        asked: set[str] = set()  # steps whose child this wake-up asked for: nothing to look at until it ends
        for _ in range(MAX_PASSES):
            now = self.clock()
            ctx = CommandContext(
                at=max(now, due) if due else now,  # a timer is never early, whatever the clocks say
                tenant_id=instance.tenant_id,
                actor=ORCHESTRATOR,
                correlation_id=instance.correlation_id,
                causation_id=cause or instance.id,
                subject=instance.subject,  # its runs and validations are about the same data subject
            )
            events = await self._decide(instance, ctx, fresh, asked)
            if not events:
                break
            await self.store.save(instance, events)
            fresh |= {e.step_id for e in events if isinstance(e, StepStarted)}
        for at in instance.wake_ups():
            if (instance.id, at) not in self.scheduled:
                await self.timers.schedule(instance.tenant_id, instance.id, at)
                self._note(self.scheduled, (instance.id, at), True)

    async def _decide(
        self, instance: WorkflowInstance, ctx: CommandContext, fresh: set[str], asked: set[str]
    ) -> list[DomainEvent]:
        if instance.status == "compensating":
            return await self._compensate(instance, ctx)
        if instance.status == "cancelled":
            await self._cancel_runs(instance, ctx)
            return []
        if instance.status != "running":
            return []
        events = instance.start_ready_steps(ctx)
        for step_id in instance.running_steps():
            if instance.status != "running":
                break
            deadline = instance.deadline(step_id)
            if deadline is not None and ctx.at >= deadline:
                events += instance.time_out(ctx, step_id)
            elif step_id in asked or any(getattr(e, "step_id", None) == step_id for e in events):
                continue  # its child was just asked for; or it started in this pass, and is saved first
            else:
                events += await self._advance(instance, step_id, ctx, fresh=step_id in fresh)
                if step_id in fresh:
                    asked.add(step_id)
        return events

    async def _advance(
        self, instance: WorkflowInstance, step_id: str, ctx: CommandContext, *, fresh: bool
    ) -> list[DomainEvent]:
        kind = instance.definition.step(step_id).kind
        try:
            match kind:
                case "agent":
                    return await self._agent_step(instance, step_id, ctx, fresh=fresh)
                case "validate":
                    return await self._validate_step(instance, step_id, ctx, fresh=fresh)
                case "notify":
                    message = self._message(instance.definition.params(step_id), variables(instance, step_id))
                    return instance.request_notification(ctx, step_id, **message)
                case "branch":
                    taken = holds(instance.definition.params(step_id).condition, variables(instance, step_id))
                    return instance.complete_branch(ctx, step_id, taken=taken)
                case _:
                    return []  # an approval waits for its signal or its deadline
        except TemplateProblem as problem:
            return instance.fail_step(ctx, step_id, error=str(problem))

    async def _agent_step(
        self, instance: WorkflowInstance, step_id: str, ctx: CommandContext, *, fresh: bool
    ) -> list[DomainEvent]:
        params: AgentParams = instance.definition.params(step_id)
        state = instance.steps[step_id]
        key = f"{instance.id}/{step_id}/{state.attempts}"
        run = None if fresh else await self._find(AgentRun, new_aggregate_id(ctx, AgentRun, key))
        if run is None:
            prompt = render(params.prompt, variables(instance, step_id))
            if state.feedback:
                prompt += FEEDBACK_NOTE.format(feedback=state.feedback)
            problem = await self._request_run(instance, step_id, ctx, agent=params.agent, prompt=prompt, key=key)
            return instance.fail_step(ctx, step_id, error=problem) if problem else []
        if run.status == "succeeded":
            if params.output == "text":
                return instance.complete_step(ctx, step_id, output=run.output)
            try:
                return instance.complete_step(ctx, step_id, output=parse_json_output(run.output))
            except json.JSONDecodeError as error:
                return instance.fail_step(ctx, step_id, error=f"the agent's answer is not JSON: {error}")
        if run.status == "refused":
            if params.on_budget == "wait" and run.refused_until is not None:
                return instance.defer_step(ctx, step_id, until=run.refused_until, reason=run.error)
            return instance.fail_step(ctx, step_id, error=f"agent run refused: {run.error}", retry=False)
        if run.status in TERMINAL:
            return instance.fail_step(ctx, step_id, error=f"agent run {run.status}: {run.error}")
        return []

    async def _request_run(
        self, instance: WorkflowInstance, step_id: str, ctx: CommandContext, *, agent: str, prompt: str, key: str
    ) -> str:
        """Asks for the step's run; returns why it could not, or an empty string."""
        agent_id = await self.names.agent(instance.tenant_id, agent)
        if agent_id is None:
            return f"no active agent named {agent!r}"
        ref = StepRef(instance_id=instance.id, step_id=step_id, attempt=instance.steps[step_id].attempts)
        command = RequestAgentRun(agent_id=agent_id, prompt=prompt, idempotency_key=key, workflow_step=ref)
        try:
            asked = await request_agent_run(self.store, ctx, command)
        except DomainError as refused:  # an archived agent, say
            return str(refused)
        self._remember(asked.id, ref)
        return ""

    def _remember(self, child: UUID, ref: StepRef) -> None:
        self._note(self.asked, child, ref)

    @staticmethod
    def _note(memory: dict[Any, Any], key: Any, value: Any) -> None:
        """Bounded memory: the oldest entry goes first."""
        if len(memory) >= MAX_REMEMBERED:
            memory.pop(next(iter(memory)))
        memory[key] = value

    async def _validate_step(
        self, instance: WorkflowInstance, step_id: str, ctx: CommandContext, *, fresh: bool
    ) -> list[DomainEvent]:
        params: ValidateParams = instance.definition.params(step_id)
        state = instance.steps[step_id]
        key = f"{instance.id}/{step_id}/{state.attempts}"
        validation = None if fresh else await self._find(Validation, new_aggregate_id(ctx, Validation, key))
        if validation is None:
            ruleset_id = await self.names.ruleset(instance.tenant_id, params.ruleset)
            if ruleset_id is None:
                return instance.fail_step(ctx, step_id, error=f"no rule set named {params.ruleset!r}")
            command = RequestValidation(
                ruleset_id=ruleset_id,
                subject_type="workflow_step",
                subject_id=f"{instance.id}/{params.target}",
                output=as_text(instance.steps[params.target].output),
                idempotency_key=key,
                workflow_step=StepRef(instance_id=instance.id, step_id=step_id, attempt=state.attempts),
            )
            asked = await request_validation(self.store, ctx, command)
            assert command.workflow_step is not None
            self._remember(asked.id, command.workflow_step)
            return []
        if validation.status != "completed":
            return []
        if validation.passed:
            verdict = {"passed": True, "score": validation.score, "validation_id": str(validation.id)}
            return instance.complete_step(ctx, step_id, output=verdict)
        return instance.retry_with_feedback(ctx, step_id, feedback=validation.feedback)

    @staticmethod
    def _message(params: NotifyParams, values: dict[str, Any]) -> dict[str, str]:
        return {
            "channel": params.channel,
            "recipient": render(params.recipient, values),
            "subject": render(params.subject, values),
            "body": render(params.template, values),
        }

    # -- unwinding -------------------------------------------------------------------------------

    async def _compensate(self, instance: WorkflowInstance, ctx: CommandContext) -> list[DomainEvent]:
        step_id = instance.next_compensation()
        assert step_id is not None
        compensation = instance.definition.step(step_id).compensate
        assert isinstance(compensation, Compensation)
        values = variables(instance) | {"step": step_id, "reason": instance.reason}
        try:
            if compensation.kind == "notify":
                message = self._message(compensation.typed(), values)
                return instance.compensate_with_notification(ctx, step_id, **message)
            params: AgentParams = compensation.typed()
            key = f"{instance.id}/{step_id}/compensate"
            run = await self._find(AgentRun, new_aggregate_id(ctx, AgentRun, key))
            if run is None:
                prompt = render(params.prompt, values)
                problem = await self._request_run(instance, step_id, ctx, agent=params.agent, prompt=prompt, key=key)
                return instance.record_compensation(ctx, step_id, error=problem) if problem else []
            if run.status == "succeeded":
                return instance.record_compensation(ctx, step_id)
            if run.status in TERMINAL:
                return instance.record_compensation(ctx, step_id, error=f"compensation run {run.status}: {run.error}")
            return []
        except TemplateProblem as problem:
            return instance.record_compensation(ctx, step_id, error=str(problem))

    async def _cancel_runs(self, instance: WorkflowInstance, ctx: CommandContext) -> None:
        """A cancelled instance stops the runs it still waits for."""
        for step_id in instance.running_steps():
            if instance.definition.step(step_id).kind != "agent":
                continue
            key = f"{instance.id}/{step_id}/{instance.steps[step_id].attempts}"
            run = await self._find(AgentRun, new_aggregate_id(ctx, AgentRun, key))
            if run is not None and run.status not in TERMINAL:
                with contextlib.suppress(DomainError, ConcurrencyError):  # it finished meanwhile
                    await cancel_agent_run(self.store, ctx, CancelAgentRun(run_id=run.id, reason="instance cancelled"))

    async def _find(self, kind: type[A], aggregate_id: UUID) -> A | None:
        try:
            return await self.store.get(kind, aggregate_id)
        except AggregateNotFound:
            return None
