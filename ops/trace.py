"""The forensic timeline of one workflow instance, built from streams already read: no I/O here.

The instance's own stream says which children it had: each `StepStarted` of an agent or validate step
made one run or validation, and each agent compensation one run, with an id derived from
(tenant, kind, "instance/step/attempt") exactly as the orchestrator derives it. Each event is linked to
its cause: an event of the trace (by its event id), the instance itself, the request that started the
instance (its correlation id), or something outside the trace.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

import msgspec

from commands.unit_of_work import new_aggregate_id
from domain.agents.agent_run import AgentRun, AgentRunRequested, AgentRunSucceeded, AttemptStarted
from domain.aggregate import CommandContext
from domain.envelope import event_id_of
from domain.events import DomainEvent
from domain.validation.validation import JudgeConsulted, Validation, ValidationCompleted, ValidationRequested
from domain.workflows.instance import (
    CompensationStarted,
    StepAttemptFailed,
    StepCompleted,
    StepDeferred,
    StepFailed,
    StepRetriedWithFeedback,
    StepSkipped,
    StepStarted,
    WorkflowInstance,
    WorkflowInstanceStarted,
)
from projections.projection import Recorded

Kind = Literal["instance", "agent_run", "validation"]
Role = Literal["instance", "step", "compensation"]
META = ("originator_id", "originator_version", "timestamp", "metadata")
STEP_ENDINGS: dict[type[DomainEvent], str] = {
    StepCompleted: "completed",
    StepAttemptFailed: "failed, retried",
    StepFailed: "failed",
    StepDeferred: "deferred",
    StepRetriedWithFeedback: "sent back",
}


class NotAnInstance(Exception):
    """The stream is not a workflow instance's."""


@dataclass(frozen=True)
class Child:
    """A run or a validation made on the instance's behalf."""

    stream_id: UUID
    kind: Kind
    role: Role
    step: str
    attempt: int

    @property
    def label(self) -> str:
        what = "run" if self.kind == "agent_run" else "validation"
        return (
            f"{what} {self.step} (compensation)"
            if self.role == "compensation"
            else f"{what} {self.step}#{self.attempt}"
        )


def instance_started(history: Sequence[Recorded]) -> WorkflowInstanceStarted:
    """The stream's first event, if it starts a workflow instance."""
    first = history[0].event if history else None
    if not isinstance(first, WorkflowInstanceStarted):
        kind = type(first).__name__ if first is not None else "empty"
        raise NotAnInstance(f"stream is not a workflow instance (its first event is {kind})")
    return first


def expected_children(history: Sequence[Recorded]) -> list[Child]:
    """The runs and validations the orchestrator asked for, by the ids it derives for them."""
    started = instance_started(history)
    definition = started.definition
    ctx = CommandContext(
        at=started.timestamp,
        tenant_id=started.metadata.tenant_id,
        actor="trace",
        correlation_id=started.metadata.correlation_id,
        causation_id=started.metadata.causation_id,
    )
    instance = started.originator_id
    found: dict[UUID, Child] = {}
    for event in (recorded.event for recorded in history):
        if isinstance(event, StepStarted):
            kind = definition.step(event.step_id).kind
            key = f"{instance}/{event.step_id}/{event.attempt}"
            if kind == "agent":
                child = Child(new_aggregate_id(ctx, AgentRun, key), "agent_run", "step", event.step_id, event.attempt)
            elif kind == "validate":
                child = Child(
                    new_aggregate_id(ctx, Validation, key), "validation", "step", event.step_id, event.attempt
                )
            else:
                continue
            found.setdefault(child.stream_id, child)
        elif isinstance(event, CompensationStarted):
            for step_id in event.plan:
                compensation = definition.step(step_id).compensate
                if compensation is not None and compensation.kind == "agent":
                    run_id = new_aggregate_id(ctx, AgentRun, f"{instance}/{step_id}/compensate")
                    found.setdefault(run_id, Child(run_id, "agent_run", "compensation", step_id, 0))
    return list(found.values())


def child_of(instance_id: UUID, history: Sequence[Recorded], expected: Child | None = None) -> Child | None:
    """The child a stream is, if its first event names a step of this instance; None otherwise."""
    first = history[0].event if history else None
    if not isinstance(first, AgentRunRequested | ValidationRequested):
        return None
    ref = first.workflow_step
    if ref is None or ref.instance_id != instance_id:
        return None
    if expected is not None:
        return expected
    kind: Kind = "agent_run" if isinstance(first, AgentRunRequested) else "validation"
    return Child(first.originator_id, kind, "step", ref.step_id, ref.attempt)


def seconds(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds(), 6)


def event_data(event: DomainEvent) -> dict[str, Any]:
    return {f: msgspec.to_builtins(getattr(event, f)) for f in event.__struct_fields__ if f not in META}


def usage_of(event: DomainEvent) -> dict[str, Any]:
    """Tokens, cost and latency, for the events that carry them (a run's answer, a judge's reply)."""
    if isinstance(event, AgentRunSucceeded | JudgeConsulted):
        return {
            "tokens_in": event.tokens_in,
            "tokens_out": event.tokens_out,
            "cost": str(event.cost),
            "latency_ms": event.latency_ms,
            "model": f"{event.provider}/{event.model}" if event.provider else "",
        }
    return {}


@dataclass
class Stream:
    child: Child | None  # None: the instance itself
    history: list[Recorded]

    @property
    def kind(self) -> Kind:
        return self.child.kind if self.child else "instance"

    @property
    def label(self) -> str:
        return self.child.label if self.child else "instance"


def build_trace(history: Sequence[Recorded], children: Iterable[tuple[Child, Sequence[Recorded]]]) -> dict[str, Any]:
    """The whole document: events in log order, linked; the children; the steps; approvals; who; totals."""
    started = instance_started(history)
    instance_id = started.originator_id
    correlation = started.metadata.correlation_id
    streams = [Stream(None, list(history))] + [Stream(child, list(events)) for child, events in children if events]
    where = {r.position: s for s in streams for r in s.history}
    recorded = sorted((r for s in streams for r in s.history), key=lambda r: r.position)
    by_event_id = {event_id_of(r.event.originator_id, r.event.originator_version): r.position for r in recorded}
    t0 = recorded[0].event.timestamp

    def cause_of(event: DomainEvent) -> dict[str, Any]:
        cause = event.metadata.causation_id
        if cause in by_event_id:
            return {"kind": "event", "position": by_event_id[cause]}
        if cause == instance_id:
            return {"kind": "instance"}
        if cause == correlation:
            return {"kind": "request"}
        return {"kind": "external", "id": str(cause)}

    events = []
    for r in recorded:
        e, stream = r.event, where[r.position]
        step = stream.child.step if stream.child else getattr(e, "step_id", None)
        attempt = stream.child.attempt if stream.child else getattr(e, "attempt", None)
        events.append(
            {
                "position": r.position,
                "event_id": str(event_id_of(e.originator_id, e.originator_version)),
                "stream_id": str(e.originator_id),
                "stream": stream.label,
                "kind": stream.kind,
                "step": step,
                "attempt": attempt,
                "version": e.originator_version,
                "time": e.timestamp.isoformat(),
                "elapsed_seconds": seconds(t0, e.timestamp),
                "type": type(e).__name__,
                "actor": e.metadata.actor,
                "correlation_id": str(e.metadata.correlation_id),
                "causation_id": str(e.metadata.causation_id),
                "cause": cause_of(e),
                **usage_of(e),
                "data": event_data(e),
            }
        )
    by_position = {record["position"]: record for record in events}
    first_of = {s.history[0].event.originator_id: s.history[0].position for s in streams}

    def chain(start: int) -> tuple[list[int], bool]:
        """From a child's first event, cause by cause (a child's event stands for the child's request),
        to the instance: the positions passed, and whether it got there."""
        path: list[int] = []
        current = by_position[start]
        while len(path) <= len(events):
            cause = current["cause"]
            if cause["kind"] == "instance":
                return path, True
            if cause["kind"] != "event":
                return path, False
            target = by_position[cause["position"]]
            path.append(target["position"])
            if target["kind"] == "instance":
                return path, True
            current = by_position[first_of[UUID(target["stream_id"])]]
        return path, False  # a cycle: causes that do not lead anywhere

    return {
        "instance_id": str(instance_id),
        "tenant": started.metadata.tenant_id,
        "template": started.template_name,
        "template_version": started.template_version,
        "correlation_id": str(correlation),
        "status": status_of(history),
        "started_at": t0.isoformat(),
        "ended_at": recorded[-1].event.timestamp.isoformat(),
        "children": [child_record(s, chain) for s in streams if s.child is not None],
        "events": events,
        "steps": step_attempts(history, streams),
        "approvals": approvals(history),
        "actors": actors(recorded),
        "totals": totals(recorded, streams, history),
    }


def status_of(history: Sequence[Recorded]) -> str:
    instance = WorkflowInstance.project(r.event for r in history)
    assert instance is not None
    return instance.status


def child_record(stream: Stream, chain: Any) -> dict[str, Any]:
    child = stream.child
    assert child is not None
    path, reaches = chain(stream.history[0].position)
    record: dict[str, Any] = {
        "stream_id": str(child.stream_id),
        "kind": child.kind,
        "role": child.role,
        "step": child.step,
        "attempt": child.attempt,
        "label": child.label,
        "events": len(stream.history),
        "first_position": stream.history[0].position,
        "requested_by": path[0] if path else None,
        "chain": path,
        "reaches_instance": reaches,
    }
    events = [r.event for r in stream.history]
    if child.kind == "agent_run":
        run = AgentRun.project(events)
        assert run is not None
        record |= {
            "status": run.status,
            "model": f"{run.provider}/{run.model}",
            "attempts": len(run.attempts),
            "tokens_in": run.tokens_in,
            "tokens_out": run.tokens_out,
            "cost": str(run.cost),
            "seconds": seconds(events[0].timestamp, events[-1].timestamp),
        }
    else:
        check = Validation.project(events)
        assert check is not None
        record |= {
            "status": check.status,
            "score": check.score if check.status == "completed" else None,
            "passed": check.passed if check.status == "completed" else None,
            "ruleset_id": str(check.ruleset_id),
            "ruleset_version": check.ruleset_version,
            "seconds": seconds(events[0].timestamp, events[-1].timestamp),
        }
    return record


def step_attempts(history: Sequence[Recorded], streams: Sequence[Stream]) -> list[dict[str, Any]]:
    """Each attempt of each step: when it started and ended, how, and the child it made."""
    definition = instance_started(history).definition
    made = {
        (s.child.step, s.child.attempt): str(s.child.stream_id) for s in streams if s.child and s.child.role == "step"
    }
    open_: dict[str, tuple[datetime, dict[str, Any]]] = {}
    rows: list[dict[str, Any]] = []
    for r in history:
        e = r.event
        if isinstance(e, StepStarted):
            row: dict[str, Any] = {
                "step": e.step_id,
                "kind": definition.step(e.step_id).kind,
                "attempt": e.attempt,
                "started_at": e.timestamp.isoformat(),
                "ended_at": None,
                "seconds": None,
                "outcome": "running",
                "child": made.get((e.step_id, e.attempt)),
            }
            open_[e.step_id] = (e.timestamp, row)
            rows.append(row)
        elif isinstance(e, StepSkipped):
            rows.append(
                {"step": e.step_id, "kind": definition.step(e.step_id).kind, "attempt": 0, "started_at": None}
                | {"ended_at": e.timestamp.isoformat(), "seconds": None, "outcome": "skipped", "child": None}
            )
        elif type(e) in STEP_ENDINGS and (ending := open_.pop(getattr(e, "step_id", ""), None)) is not None:
            start, ended = ending
            ended |= {"ended_at": e.timestamp.isoformat(), "seconds": seconds(start, e.timestamp)}
            ended["outcome"] = STEP_ENDINGS[type(e)]
    return rows


def approvals(history: Sequence[Recorded]) -> list[dict[str, Any]]:
    """Who answered each approval step, and how (a timeout answers too)."""
    definition = instance_started(history).definition
    found = []
    for r in history:
        e = r.event
        step_id = getattr(e, "step_id", None)
        if step_id is None or definition.step(step_id).kind != "approval":
            continue
        if isinstance(e, StepCompleted):
            output = e.output if isinstance(e.output, dict) else {}
            by = str(output.get("by", e.metadata.actor))
            decision = "approved by timeout" if by == "timeout" else "approved"
            comment = str(output.get("comment", ""))
        elif isinstance(e, StepFailed):
            by, decision, comment = e.metadata.actor, "rejected", e.error
        else:
            continue
        found.append(
            {"step": step_id, "decision": decision, "by": by, "comment": comment}
            | {"time": e.timestamp.isoformat(), "position": r.position}
        )
    return found


def actors(recorded: Sequence[Recorded]) -> list[dict[str, Any]]:
    """Who did what: each actor's events by type, in order of first appearance."""
    did: dict[str, Counter[str]] = {}
    for r in recorded:
        did.setdefault(r.event.metadata.actor, Counter())[type(r.event).__name__] += 1
    return [{"actor": who, "events": sum(types.values()), "did": dict(types)} for who, types in did.items()]


def totals(recorded: Sequence[Recorded], streams: Sequence[Stream], history: Sequence[Recorded]) -> dict[str, Any]:
    tokens_in = tokens_out = 0
    cost = run_cost = judge_cost = Decimal(0)
    for r in recorded:
        e = r.event
        if isinstance(e, AgentRunSucceeded | JudgeConsulted):
            tokens_in, tokens_out, cost = tokens_in + e.tokens_in, tokens_out + e.tokens_out, cost + e.cost
            if isinstance(e, AgentRunSucceeded):
                run_cost += e.cost
            else:
                judge_cost += e.cost
    per_step: dict[str, float] = {}
    for row in step_attempts(history, streams):
        if row["seconds"] is not None:
            per_step[row["step"]] = round(per_step.get(row["step"], 0.0) + row["seconds"], 6)
    runs = [s for s in streams if s.kind == "agent_run"]
    return {
        "events": len(recorded),
        "wall_seconds": seconds(recorded[0].event.timestamp, recorded[-1].event.timestamp),
        "step_seconds": per_step,
        "step_attempts": sum(1 for r in history if isinstance(r.event, StepStarted)),
        "runs": len(runs),
        "run_attempts": sum(1 for s in runs for r in s.history if isinstance(r.event, AttemptStarted)),
        "validations": sum(1 for s in streams if s.kind == "validation"),
        "validations_passed": sum(1 for r in recorded if isinstance(r.event, ValidationCompleted) and r.event.passed),
        "judge_calls": sum(1 for r in recorded if isinstance(r.event, JudgeConsulted)),
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost": str(cost),
        "run_cost": str(run_cost),
        "judge_cost": str(judge_cost),
    }
