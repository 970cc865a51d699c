"""The workflow definition model: steps, their dependencies, retries and compensations."""

from __future__ import annotations

import re
from graphlib import CycleError, TopologicalSorter
from typing import Any, Literal

import msgspec

from domain.workflows.errors import InvalidWorkflowDefinition

StepKind = Literal["agent", "validate", "notify", "approval", "branch"]
STEP_ID = re.compile(r"^[a-z][a-z0-9_\-]{0,62}$")


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    max_attempts: int = 1
    backoff_seconds: float = 0.0


class Compensation(msgspec.Struct, frozen=True, kw_only=True):
    """The action that undoes a completed step when the saga unwinds."""

    kind: StepKind
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class StepDefinition(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: StepKind
    needs: list[str] = msgspec.field(default_factory=list)
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    retry: RetryPolicy = RetryPolicy()
    timeout_seconds: float | None = None
    compensate: Compensation | None = None


class WorkflowDefinition(msgspec.Struct, frozen=True, kw_only=True):
    steps: list[StepDefinition]
    inputs: list[str] = msgspec.field(default_factory=list)

    def step(self, step_id: str) -> StepDefinition:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


def definition_problems(definition: WorkflowDefinition) -> list[str]:
    """Every problem of a definition, each naming its step, or an empty list."""
    problems: list[str] = []
    if not definition.steps:
        problems.append("a workflow needs at least one step")
    ids = [step.id for step in definition.steps]
    seen: set[str] = set()
    for step in definition.steps:
        if not STEP_ID.match(step.id):
            problems.append(f"step {step.id!r}: id must be lower-case letters, digits, '-' or '_'")
        if step.id in seen:
            problems.append(f"step {step.id!r}: id is used more than once")
        seen.add(step.id)
        for need in step.needs:
            if need not in ids:
                problems.append(f"step {step.id!r}: needs unknown step {need!r}")
            if need == step.id:
                problems.append(f"step {step.id!r}: needs itself")
        if step.retry.max_attempts < 1:
            problems.append(f"step {step.id!r}: retry.max_attempts must be at least 1")
        if step.retry.backoff_seconds < 0:
            problems.append(f"step {step.id!r}: retry.backoff_seconds cannot be negative")
        if step.timeout_seconds is not None and step.timeout_seconds <= 0:
            problems.append(f"step {step.id!r}: timeout_seconds must be positive")
    if not problems:
        graph = {step.id: set(step.needs) for step in definition.steps}
        try:
            tuple(TopologicalSorter(graph).static_order())
        except CycleError as cycle:
            path = " -> ".join(cycle.args[1])
            problems.append(f"steps form a cycle: {path}")
    duplicates = {name for name in definition.inputs if definition.inputs.count(name) > 1}
    problems.extend(f"input {name!r} is declared more than once" for name in sorted(duplicates))
    return problems


def check_definition(definition: WorkflowDefinition) -> None:
    problems = definition_problems(definition)
    if problems:
        raise InvalidWorkflowDefinition(problems)
