"""A rule-based state machine drives the orchestrator: random step outcomes, signals, time, and crashes.

The orchestrator runs over the in-memory event store. A crash is the orchestrator dying before its n-th
write (whatever it had decided in memory is lost); the next wake-up is a fresh orchestrator that only has
the store. The machine plays the workers (runs and validations end as it draws), the operator (signals)
and the clock (timeouts, backoffs). Names and timers are plain dicts here — their real adapters read the
read models and a PostgreSQL table, and run in the e2e saga tests; what is under test is the deciding.

Properties: no step attempt starts twice; a run is never asked for twice; compensations run once each in
reverse completion order; a finished instance stays finished; and, at the end, with workers that succeed
and an operator that approves, every instance finishes — none is stuck.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from adapters.event_store.application import StoreApplication, memory_env
from adapters.event_store.store import EventSourcedStore
from commands import agents, validation, workflows
from commands.orchestrator import Orchestrator
from commands.unit_of_work import new_aggregate_id
from domain.agents.agent_run import TERMINAL, AgentRun
from domain.aggregate import Aggregate, CommandContext
from domain.events import DomainEvent
from domain.validation.ruleset import Rule
from domain.validation.scoring import RuleResult
from domain.validation.validation import Validation
from domain.workflows.definition import WorkflowDefinition
from domain.workflows.instance import (
    FINAL,
    CompensationRecorded,
    StepCompleted,
    StepRetriedWithFeedback,
    StepStarted,
    WorkflowInstance,
)
from tests.strategies import BASE_TIME, workflow_definitions

TENANT = "tenant-a"


class Crash(Exception):
    """The orchestrator's process died here."""


class CrashingStore:
    """The store as a dying process sees it: the n-th write never happens, nor anything after it."""

    def __init__(self, store: EventSourcedStore, writes_left: int | None) -> None:
        self._store = store
        self._writes_left = writes_left

    async def get(self, kind: Any, aggregate_id: UUID, *, version: int | None = None) -> Any:
        return await self._store.get(kind, aggregate_id, version=version)

    async def position_of(self, aggregate_id: UUID, version: int) -> int:
        return await self._store.position_of(aggregate_id, version)

    async def save(self, aggregate: Aggregate, events: Sequence[DomainEvent]) -> int:
        if self._writes_left is not None:
            if self._writes_left == 0:
                raise Crash
            self._writes_left -= 1
        return await self._store.save(aggregate, events)


class DictNames:
    def __init__(self) -> None:
        self.agents: dict[str, UUID] = {}
        self.rulesets: dict[str, UUID] = {}

    async def agent(self, tenant_id: str, name: str) -> UUID | None:
        return self.agents.get(name)

    async def ruleset(self, tenant_id: str, name: str) -> UUID | None:
        return self.rulesets.get(name)


class ListTimers:
    def __init__(self) -> None:
        self.due: set[datetime] = set()

    async def schedule(self, tenant_id: str, instance_id: UUID, due_at: datetime) -> None:
        self.due.add(due_at)


class OrchestratorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.store = EventSourcedStore(StoreApplication(env=memory_env()))
        self.names = DictNames()
        self.timers = ListTimers()
        self.now = BASE_TIME
        self.crashes = 0
        self.final: str | None = None

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def ctx(self, actor: str = "alice") -> CommandContext:
        return CommandContext(
            at=self.now, tenant_id=TENANT, actor=actor, correlation_id=UUID(int=1), causation_id=UUID(int=1)
        )

    def orchestrator(self, writes_left: int | None = None) -> Orchestrator:
        store = CrashingStore(self.store, writes_left)
        return Orchestrator(store=store, names=self.names, timers=self.timers, clock=lambda: self.now)

    @initialize(definition=workflow_definitions(max_steps=5))
    def start(self, definition: WorkflowDefinition) -> None:
        async def go() -> UUID:
            writer = await agents.register_agent(
                self.store, self.ctx(), agents.RegisterAgent(name="writer", provider="scripted", model="s")
            )
            self.names.agents["writer"] = writer.id
            rule = Rule(id="r", kind="contains", params={"text": "x"})
            quality = await validation.define_ruleset(
                self.store, self.ctx(), validation.DefineRuleSet(name="quality", rules=[rule], threshold=0.5)
            )
            self.names.rulesets["quality"] = quality.id
            template = await workflows.register_workflow_template(
                self.store, self.ctx(), workflows.RegisterWorkflowTemplate(name="flow", definition=definition)
            )
            inputs = dict.fromkeys(definition.inputs, "x")
            started = await workflows.start_workflow_instance(
                self.store, self.ctx(), workflows.StartWorkflowInstance(template_id=template.id, inputs=inputs)
            )
            return started.id

        self.instance_id = self.run(go())

    @property
    def instance(self) -> WorkflowInstance:
        return self.run(self.store.get(WorkflowInstance, self.instance_id))  # type: ignore[no-any-return]

    def events(self) -> list[DomainEvent]:
        return list(self.store.events_of(self.instance_id))

    def requested(self, kind: type[Any]) -> list[Any]:
        """Every run or validation in the store, as it stands now (the instance is the only one asking)."""
        recorder = self.store.app.recorder
        assert isinstance(recorder, ApplicationRecorder)
        creation = "AgentRunRequested" if kind is AgentRun else "ValidationRequested"
        streams = {n.originator_id for n in recorder.select_notifications(1, 100_000) if n.topic.endswith(creation)}
        return [self.run(self.store.get(kind, UUID(str(stream)))) for stream in sorted(streams, key=str)]

    # -- the world ------------------------------------------------------------------------------

    @rule(writes=st.sampled_from([None, 0, 1, 1, 2, 3, 5]))
    def wake(self, writes: int | None) -> None:
        """The orchestrator wakes (an event, a timer) — and maybe dies before its n-th write."""
        try:
            self.run(self.orchestrator(writes).reconcile(self.instance_id))
        except Crash:
            self.crashes += 1

    @rule(data=st.data(), outcome=st.sampled_from(["succeed", "succeed", "fail"]))
    def a_run_ends(self, data: st.DataObject, outcome: str) -> None:
        open_runs = [r for r in self.requested(AgentRun) if r.status not in TERMINAL]
        if not open_runs:
            return
        run = data.draw(st.sampled_from(open_runs))
        self.finish_run(run, outcome)

    def finish_run(self, run: AgentRun, outcome: str) -> None:
        async def go() -> None:
            ctx = self.ctx("agent-worker")
            await agents.start_run_attempt(
                self.store, ctx, agents.StartRunAttempt(run_id=run.id, provider="scripted", model="s")
            )
            if outcome == "succeed":
                done = agents.CompleteAgentRun(
                    run_id=run.id, output='{"answer": "x"}', latency_ms=1, tokens_in=1, tokens_out=1, cost=Decimal(0)
                )
                await agents.complete_agent_run(self.store, ctx, done)
            else:
                await agents.fail_agent_run(self.store, ctx, agents.FailAgentRun(run_id=run.id, reason="down"))

        self.run(go())

    @rule(data=st.data(), passed=st.booleans())
    def a_validation_ends(self, data: st.DataObject, passed: bool) -> None:
        open_checks = [v for v in self.requested(Validation) if v.status != "completed"]
        if open_checks:
            self.finish_validation(data.draw(st.sampled_from(open_checks)), passed)

    def finish_validation(self, check: Validation, passed: bool) -> None:
        result = RuleResult(rule_id="r", score=1.0 if passed else 0.0, passed=passed, message="" if passed else "no x")
        command = validation.CompleteValidation(validation_id=check.id, results=[result])
        self.run(validation.complete_validation(self.store, self.ctx("validator"), command))

    @rule(approved=st.booleans(), name=st.sampled_from(["approve", "other"]))
    def a_signal(self, approved: bool, name: str) -> None:
        if self.instance.status != "running":
            return
        command = workflows.SignalWorkflowInstance(
            instance_id=self.instance_id, name=name, payload={"approved": approved}, roles=["operator"]
        )
        self.run(workflows.signal_workflow_instance(self.store, self.ctx("bob"), command))

    @rule(seconds=st.sampled_from([0.3, 1.0, 31.0]))
    def time_passes(self, seconds: float) -> None:
        """The clock moves; timers that came due fire (the orchestrator may have been down meanwhile)."""
        self.now += timedelta(seconds=seconds)
        due = sorted(t for t in self.timers.due if t <= self.now)
        for at in due:
            self.timers.due.discard(at)
            self.run(self.orchestrator().reconcile(self.instance_id, due=at))

    @rule(chance=st.integers(0, 29))
    def cancel(self, chance: int) -> None:
        if chance == 7 and self.instance.status == "running":
            command = workflows.CancelWorkflowInstance(instance_id=self.instance_id)
            self.run(workflows.cancel_workflow_instance(self.store, self.ctx(), command))

    # -- what must hold -------------------------------------------------------------------------

    @invariant()
    def no_step_attempt_starts_twice(self) -> None:
        starts = [(e.step_id, e.attempt) for e in self.events() if isinstance(e, StepStarted)]
        assert len(starts) == len(set(starts)), starts

    @invariant()
    def every_run_answers_one_started_step_attempt(self) -> None:
        started = {(e.step_id, e.attempt) for e in self.events() if isinstance(e, StepStarted)}
        for run in self.requested(AgentRun):
            assert run.workflow_step is not None
            ref = run.workflow_step
            key = f"{self.instance_id}/{ref.step_id}/{ref.attempt}"
            compensation = f"{self.instance_id}/{ref.step_id}/compensate"
            if run.id != new_aggregate_id(self.ctx(), AgentRun, compensation):
                assert run.id == new_aggregate_id(self.ctx(), AgentRun, key)
                assert (ref.step_id, ref.attempt) in started, f"a run for {ref} whose step attempt never started"

    @invariant()
    def compensations_run_once_each_in_reverse_completion_order(self) -> None:
        order: list[str] = []
        for e in self.events():
            if isinstance(e, StepCompleted):
                order.append(e.step_id)
            elif isinstance(e, StepRetriedWithFeedback):
                order = [s for s in order if s not in e.reset]
        instance = self.instance
        compensated = [e.step_id for e in self.events() if isinstance(e, CompensationRecorded)]
        assert len(compensated) == len(set(compensated))
        planned = [s for s in reversed(order) if instance.definition.step(s).compensate is not None]
        if instance.status in ("compensating", "compensated"):
            assert compensated == planned[: len(compensated)]
        if instance.status == "compensated":
            assert compensated == planned

    @invariant()
    def a_finished_instance_stays_finished(self) -> None:
        status = self.instance.status
        if self.final is not None:
            assert status == self.final
        elif status in FINAL:
            self.final = status

    def teardown(self) -> None:
        try:
            if hasattr(self, "instance_id"):
                self.drive_to_the_end()
        finally:
            self.run(self.store.close())
            self.loop.close()

    def drive_to_the_end(self) -> None:
        """Workers that succeed, validations that pass, an operator who approves: it must finish —
        with the orchestrator dying after its first, second, third write of every other wake-up."""
        for round_ in range(80):
            if round_ % 2 == 0:
                self.wake(round_ // 2 % 3 + 1)
            self.run(self.orchestrator().reconcile(self.instance_id))
            instance = self.instance
            if instance.status in FINAL:
                event(f"ended {instance.status} after {self.crashes} crash(es)")
                return
            for run in self.requested(AgentRun):
                if run.status not in TERMINAL:
                    self.finish_run(run, "succeed")
            for check in self.requested(Validation):
                if check.status != "completed":
                    self.finish_validation(check, True)
            if instance.status == "running":
                for step_id in instance.running_steps():
                    if instance.definition.step(step_id).kind == "approval":
                        self.a_signal(True, instance.definition.params(step_id).signal)
            self.time_passes(31.0)
        raise AssertionError(f"instance stuck: {self.instance.status}, steps {self.instance.steps}")


TestOrchestratorMachine = OrchestratorMachine.TestCase
TestOrchestratorMachine.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
