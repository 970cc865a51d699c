"""Hypothesis strategies: valid inputs of the domain, and whole histories made by random commands.

A history drives one aggregate with a random sequence of commands, valid or not; refused ones
are dropped. It returns the live aggregate and every event it emitted, so that tests can check
replay, encoding and storage against the same material.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

from domain.access.api_key import ApiKey
from domain.agents.agent import PROVIDERS, Agent
from domain.agents.agent_run import AgentRun, ChatMessage
from domain.aggregate import Aggregate, CommandContext, DomainError
from domain.events import DomainEvent
from domain.validation.ruleset import Rule, RuleKind, RuleSet
from domain.validation.scoring import RuleResult
from domain.validation.validation import Validation
from domain.workflows.definition import Compensation, RetryPolicy, StepDefinition, WorkflowDefinition
from domain.workflows.instance import WorkflowInstance
from domain.workflows.template import WorkflowTemplate

BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)

texts = st.text(max_size=40)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=6,
)
costs = st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False, allow_infinity=False)


@dataclass
class Clock:
    """Deterministic command contexts: one second apart, ids from a counter."""

    tenant_id: str = "tenant-a"
    ticks: int = 0

    def ctx(self, actor: str = "alice") -> CommandContext:
        self.ticks += 1
        return CommandContext(
            at=BASE_TIME + timedelta(seconds=self.ticks),
            tenant_id=self.tenant_id,
            actor=actor,
            correlation_id=UUID(int=self.ticks),
            causation_id=UUID(int=self.ticks + 1),
            traceparent=f"00-{self.ticks:032x}-{self.ticks:016x}-01",
        )


@dataclass
class History:
    aggregate: Aggregate
    events: list[DomainEvent] = field(default_factory=list)

    def attempt(self, decide: Callable[..., list[DomainEvent]], *args: Any, **kwargs: Any) -> bool:
        """Runs one decision; a refusal must leave the state untouched."""
        before = self.aggregate.version
        try:
            self.events.extend(decide(*args, **kwargs))
        except DomainError:
            assert self.aggregate.version == before, "a refused command changed the aggregate"
            return False
        return True


@st.composite
def agent_configs(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "provider": draw(st.sampled_from(sorted(PROVIDERS))),
        "model": draw(names),
        "system_prompt": draw(texts),
        "temperature": draw(st.floats(0, 2)),
        "max_tokens": draw(st.integers(1, 100_000)),
    }


@st.composite
def agent_histories(draw: st.DrawFn) -> History:
    clock = Clock()
    agent, first = Agent.register(
        clock.ctx(), UUID(int=draw(st.integers(1, 2**64))), name=draw(names), **draw(agent_configs())
    )
    history = History(agent, [first])
    for op in draw(st.lists(st.sampled_from(["reconfigure", "bad_reconfigure", "archive"]), max_size=8)):
        if op == "reconfigure":
            config = draw(agent_configs())
            history.attempt(agent.reconfigure, clock.ctx(), **config)
        elif op == "bad_reconfigure":
            config = draw(agent_configs()) | {"temperature": 3.5}
            history.attempt(agent.reconfigure, clock.ctx(), **config)
        else:
            history.attempt(agent.archive, clock.ctx(), reason="retired")
    return history


@st.composite
def chat_messages(draw: st.DrawFn) -> list[ChatMessage]:
    earlier = draw(
        st.lists(st.builds(ChatMessage, st.sampled_from(["system", "user", "assistant"]), texts), max_size=4)
    )
    return [*earlier, ChatMessage("user", draw(texts))]


def new_agent_run(clock: Clock, run_id: UUID, messages: list[ChatMessage]) -> AgentRun:
    run, _ = AgentRun.request(
        clock.ctx(),
        run_id,
        agent_id=UUID(int=7),
        agent_config_version=1,
        provider="scripted",
        model="m",
        temperature=0.0,
        max_tokens=10,
        messages=messages,
    )
    return run


@st.composite
def agent_run_histories(draw: st.DrawFn) -> History:
    clock = Clock()
    run, first = AgentRun.request(
        clock.ctx(),
        UUID(int=draw(st.integers(1, 2**64))),
        agent_id=UUID(int=draw(st.integers(1, 2**64))),
        agent_config_version=draw(st.integers(1, 5)),
        provider="scripted",
        model=draw(names),
        temperature=draw(st.floats(0, 2)),
        max_tokens=draw(st.integers(1, 1000)),
        messages=draw(chat_messages()),
        context_id=draw(st.none() | st.builds(UUID, int=st.integers(1, 2**64))),
    )
    history = History(run, [first])
    # Terminal commands are drawn less often, so that histories get past the first attempt.
    ops = st.sampled_from(["attempt", "attempt", "attempt_failed", "attempt_failed", "succeed", "fail", "cancel"])
    for op in draw(st.lists(ops, max_size=10)):
        ctx = clock.ctx("worker")
        if op == "attempt":
            history.attempt(run.start_attempt, ctx, provider="scripted", model="m")
        elif op == "attempt_failed":
            error, latency, retryable = draw(texts), draw(st.integers(0, 10_000)), draw(st.booleans())
            history.attempt(run.record_attempt_failure, ctx, error=error, latency_ms=latency, retryable=retryable)
        elif op == "succeed":
            values = (draw(texts), draw(st.integers(0, 10_000)), draw(st.integers(0, 10**6)), draw(costs))
            history.attempt(
                run.succeed,
                ctx,
                output=values[0],
                latency_ms=values[1],
                tokens_in=values[2],
                tokens_out=values[2] // 2,
                cost=values[3],
                provider_request_id="req",
            )
        elif op == "fail":
            history.attempt(run.fail, ctx, reason="gave up")
        else:
            history.attempt(run.cancel, ctx, reason="user")
    return history


@st.composite
def workflow_definitions(draw: st.DrawFn, max_steps: int = 6) -> WorkflowDefinition:
    """Valid definitions: each step may need any earlier step, so the graph has no cycle."""
    count = draw(st.integers(1, max_steps))
    steps = []
    for index in range(count):
        needs = draw(st.lists(st.sampled_from([f"s{i}" for i in range(index)]), unique=True)) if index else []
        compensate = draw(st.none() | st.just(Compensation(kind="notify", params={"template": "undo"})))
        steps.append(
            StepDefinition(
                id=f"s{index}",
                kind=draw(st.sampled_from(["agent", "validate", "notify", "approval", "branch"])),
                needs=needs,
                params=draw(st.dictionaries(names, json_values, max_size=2)),
                retry=RetryPolicy(max_attempts=draw(st.integers(1, 3)), backoff_seconds=draw(st.floats(0, 60))),
                compensate=compensate,
            )
        )
    inputs = draw(st.lists(names, unique=True, max_size=3))
    return WorkflowDefinition(steps=steps, inputs=inputs)


@st.composite
def template_histories(draw: st.DrawFn) -> History:
    clock = Clock()
    template, first = WorkflowTemplate.register(
        clock.ctx(), UUID(int=draw(st.integers(1, 2**64))), name=draw(names), definition=draw(workflow_definitions())
    )
    history = History(template, [first])
    for op in draw(st.lists(st.sampled_from(["revise", "retire"]), max_size=5)):
        if op == "revise":
            definition = draw(workflow_definitions())
            history.attempt(template.revise, clock.ctx(), definition=definition)
        else:
            history.attempt(template.retire, clock.ctx(), reason="old")
    return history


def new_template(clock: Clock, definition: WorkflowDefinition) -> WorkflowTemplate:
    template, _ = WorkflowTemplate.register(clock.ctx(), UUID(int=99), name="flow", definition=definition)
    return template


@st.composite
def instance_histories(draw: st.DrawFn) -> History:
    clock = Clock()
    definition = draw(workflow_definitions())
    template = new_template(clock, definition)
    instance, first = WorkflowInstance.start(
        clock.ctx(),
        UUID(int=draw(st.integers(1, 2**64))),
        template=template,
        inputs={name: draw(json_values) for name in definition.inputs},
    )
    history = History(instance, [first])
    step_ids = [step.id for step in definition.steps] + ["nope"]
    ops = st.sampled_from(
        [
            "run",
            "run",
            "run",
            "fail_for_good",
            "start",
            "complete",
            "fail",
            "skip",
            "compensate",
            "compensate",
            "cancel",
            "signal",
        ]
    )
    for op in draw(st.lists(ops, max_size=30)):
        ready = instance.ready_steps()
        step_id = (
            draw(st.sampled_from(ready))
            if ready and op in ("run", "fail_for_good")
            else draw(st.sampled_from(step_ids))
        )
        ctx = clock.ctx("orchestrator")
        if op == "run":
            history.attempt(instance.start_step, ctx, step_id)
            history.attempt(instance.complete_step, clock.ctx("orchestrator"), step_id, output="ok")
        elif op == "fail_for_good":
            for _ in range(3):
                history.attempt(instance.start_step, clock.ctx("orchestrator"), step_id)
                history.attempt(instance.fail_step, clock.ctx("orchestrator"), step_id, error="down")
        elif op == "start":
            history.attempt(instance.start_step, ctx, step_id)
        elif op == "complete":
            output = draw(json_values)
            history.attempt(instance.complete_step, ctx, step_id, output=output)
        elif op == "fail":
            history.attempt(instance.fail_step, ctx, step_id, error="boom")
        elif op == "skip":
            history.attempt(instance.skip_step, ctx, step_id, reason="branch not taken")
        elif op == "compensate":
            while (target := instance.next_compensation()) is not None:
                history.attempt(instance.record_compensation, clock.ctx("orchestrator"), target)
        elif op == "signal":
            history.attempt(instance.receive_signal, ctx, name=draw(st.sampled_from(["approve", "Bad!"])), payload={})
        else:
            history.attempt(instance.cancel, ctx, reason="user")
    return history


@st.composite
def rules(draw: st.DrawFn) -> list[Rule]:
    count = draw(st.integers(1, 5))
    made = []
    for index in range(count):
        kind: RuleKind = draw(st.sampled_from(["regex", "length", "contains", "not_contains", "pii"]))
        params: dict[str, Any] = {  # type: ignore[assignment]
            "regex": {"pattern": draw(st.sampled_from(["^a", "b+", r"\d{2}", "x|y"]))},
            "length": {"min": draw(st.integers(0, 5)), "max": draw(st.integers(5, 50))},
            "contains": {"text": draw(names)},
            "not_contains": {"text": draw(names)},
            "pii": {},
        }[kind]
        made.append(Rule(id=f"r{index}", kind=kind, weight=draw(st.floats(0.1, 10)), params=params))
    return made


@st.composite
def ruleset_histories(draw: st.DrawFn) -> History:
    clock = Clock()
    ruleset, first = RuleSet.define(
        clock.ctx(),
        UUID(int=draw(st.integers(1, 2**64))),
        name=draw(names),
        rules=draw(rules()),
        threshold=draw(st.floats(0, 1)),
    )
    history = History(ruleset, [first])
    for _ in range(draw(st.integers(0, 4))):
        new_rules, threshold = draw(rules()), draw(st.floats(-0.5, 1.5))
        history.attempt(ruleset.revise, clock.ctx(), rules=new_rules, threshold=threshold)
    return history


@st.composite
def rule_results(draw: st.DrawFn, rule_list: list[Rule]) -> list[RuleResult]:
    return [
        RuleResult(rule_id=rule.id, score=draw(st.floats(0, 1)), passed=draw(st.booleans()), message=draw(texts))
        for rule in rule_list
    ]


@st.composite
def validation_histories(draw: st.DrawFn) -> History:
    clock = Clock()
    ruleset, _ = RuleSet.define(
        clock.ctx(), UUID(int=5), name="r", rules=draw(rules()), threshold=draw(st.floats(0, 1))
    )
    validation, first = Validation.request(
        clock.ctx(),
        UUID(int=draw(st.integers(1, 2**64))),
        ruleset=ruleset,
        subject_type="agent_run",
        subject_id=draw(names),
        output=draw(texts),
    )
    history = History(validation, [first])
    for _ in range(draw(st.integers(0, 2))):
        results = draw(rule_results(ruleset.rules))
        history.attempt(validation.complete, clock.ctx(), results=results)
    return history


@st.composite
def api_key_histories(draw: st.DrawFn) -> History:
    clock = Clock()
    key, first = ApiKey.issue(
        clock.ctx(),
        UUID(int=draw(st.integers(1, 2**64))),
        name=draw(names),
        roles=draw(st.lists(st.sampled_from(["admin", "operator", "viewer", "auditor"]), min_size=1, unique=True)),
        secret_sha256="ab" * 32,
    )
    history = History(key, [first])
    for _ in range(draw(st.integers(0, 2))):
        history.attempt(key.revoke, clock.ctx(), reason=draw(texts))
    return history


HISTORIES: dict[type[Aggregate], st.SearchStrategy[History]] = {
    Agent: agent_histories(),
    AgentRun: agent_run_histories(),
    WorkflowTemplate: template_histories(),
    WorkflowInstance: instance_histories(),
    RuleSet: ruleset_histories(),
    Validation: validation_histories(),
    ApiKey: api_key_histories(),
}
any_history = st.one_of(*HISTORIES.values())
