"""The workflow definition model: steps, their dependencies, retries and compensations."""

from __future__ import annotations

import re
from graphlib import CycleError, TopologicalSorter
from typing import Any, Literal

import msgspec

from domain.workflows.errors import InvalidWorkflowDefinition

StepKind = Literal["agent", "validate", "notify", "approval", "branch"]
STEP_ID = re.compile(r"^[a-z][a-z0-9_\-]{0,62}$")


class Params(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The parameters of one kind of step; templates are Jinja2 text over `inputs` and `outputs`."""


class AgentParams(Params, frozen=True, kw_only=True):
    agent: str  # the agent's name in the tenant
    prompt: str  # a template
    output: Literal["text", "json"] = "text"
    on_budget: Literal["fail", "wait"] = "fail"  # a run refused by the tenant's budget fails the step, or waits


class ValidateParams(Params, frozen=True, kw_only=True):
    ruleset: str  # the rule set's name in the tenant
    target: str  # the step whose output is validated; it must be among `needs`
    on_failure: Literal["retry", "fail", "compensate"] = "fail"
    max_retries: int = 1  # with `retry`: how many times the target runs again with the feedback


class NotifyParams(Params, frozen=True, kw_only=True):
    channel: Literal["email", "sms", "webhook", "slack"]
    recipient: str  # a template
    template: str  # the message body, a template
    subject: str = ""  # a template


class ApprovalParams(Params, frozen=True, kw_only=True):
    signal: str = "approval"  # the signal that answers it; payload `{"approved": false}` rejects
    role: Literal["admin", "operator"] = "operator"  # who may answer (admins always may)
    on_timeout: Literal["reject", "approve"] = "reject"


class BranchParams(Params, frozen=True, kw_only=True):
    condition: str  # a Jinja2 expression over inputs and outputs
    then: list[str] = msgspec.field(default_factory=list)  # steps skipped when the condition is false
    otherwise: list[str] = msgspec.field(default_factory=list)  # steps skipped when it is true


PARAMS: dict[str, type[Params]] = {
    "agent": AgentParams,
    "validate": ValidateParams,
    "notify": NotifyParams,
    "approval": ApprovalParams,
    "branch": BranchParams,
}
COMPENSATION_KINDS = frozenset({"agent", "notify"})


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_attempts: int = 1
    backoff_seconds: float = 0.0


class Compensation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The action that undoes a completed step when the saga unwinds."""

    kind: StepKind
    params: dict[str, Any] = msgspec.field(default_factory=dict)

    def typed(self) -> Any:
        """The parameters as the Struct of its kind (checked when the definition was registered)."""
        return msgspec.convert(self.params, PARAMS[self.kind])


class StepDefinition(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str
    kind: StepKind
    needs: list[str] = msgspec.field(default_factory=list)
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    retry: RetryPolicy = RetryPolicy()
    timeout_seconds: float | None = None
    compensate: Compensation | None = None


class WorkflowDefinition(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    steps: list[StepDefinition]
    inputs: list[str] = msgspec.field(default_factory=list)

    def params(self, step_id: str) -> Any:
        """The step's parameters as the Struct of its kind (the definition was checked when registered)."""
        step = self.step(step_id)
        return msgspec.convert(step.params, PARAMS[step.kind])

    def dependents(self, step_id: str) -> list[str]:
        """Every step that needs this one, directly or not, in definition order."""
        found: set[str] = set()
        frontier = {step_id}
        while frontier:
            frontier = {s.id for s in self.steps if frontier & set(s.needs)} - found
            found |= frontier
        return [s.id for s in self.steps if s.id in found]

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
        problems.extend(f"step {step.id!r}: {problem}" for problem in params_problems(step, ids))
        if step.compensate is not None:
            problems.extend(f"step {step.id!r}: compensate: {p}" for p in compensation_problems(step.compensate))
    problems.extend(branch_problems(definition))
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


def _converted(params: dict[str, Any], kind: type[Params]) -> tuple[Params | None, str]:
    try:
        return msgspec.convert(params, kind), ""
    except msgspec.ValidationError as error:
        return None, f"params: {error}"


def params_problems(step: StepDefinition, ids: list[str]) -> list[str]:
    """What is wrong with a step's parameters for its kind, and with the steps they name."""
    params, problem = _converted(step.params, PARAMS[step.kind])
    if params is None:
        return [problem]
    problems: list[str] = []
    match params:
        case ValidateParams():
            if params.target not in step.needs:
                problems.append(f"validate target {params.target!r} must be one of its needs {step.needs}")
            if params.max_retries < 0:
                problems.append("max_retries cannot be negative")
        case BranchParams():
            for name in params.then + params.otherwise:
                if name not in ids:
                    problems.append(f"branch names unknown step {name!r}")
            overlap = sorted(set(params.then) & set(params.otherwise))
            if overlap:
                problems.append(f"branch names {overlap} in both `then` and `otherwise`")
        case ApprovalParams():
            if not STEP_ID.match(params.signal):
                problems.append(f"signal {params.signal!r} must be lower-case letters, digits, '-' or '_'")
        case _:
            pass
    return problems


def branch_problems(definition: WorkflowDefinition) -> list[str]:
    """The steps a branch may skip must need the branch, so they cannot run before it decides."""
    problems = []
    for step in definition.steps:
        if step.kind != "branch":
            continue
        params, _ = _converted(step.params, BranchParams)
        if not isinstance(params, BranchParams):
            continue
        for name in params.then + params.otherwise:
            if name in {s.id for s in definition.steps} and step.id not in definition.step(name).needs:
                problems.append(f"step {name!r}: is chosen by branch {step.id!r}, so it must need it")
    return problems


def compensation_problems(compensation: Compensation) -> list[str]:
    if compensation.kind not in COMPENSATION_KINDS:
        return [f"kind must be one of {sorted(COMPENSATION_KINDS)}"]
    params, problem = _converted(compensation.params, PARAMS[compensation.kind])
    return [problem] if params is None else []


def check_definition(definition: WorkflowDefinition) -> None:
    problems = definition_problems(definition)
    if problems:
        raise InvalidWorkflowDefinition(problems)
