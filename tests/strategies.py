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
from domain.agents.agent import PROVIDERS, Agent, Fallback
from domain.agents.agent_run import AgentRun, ChatMessage
from domain.agents.budget import Budget, BudgetLimits
from domain.agents.budget_ledger import BudgetLedger
from domain.aggregate import Aggregate, CommandContext, DomainError
from domain.events import DomainEvent
from domain.personal import SUBJECT
from domain.privacy.data_subject import DataSubject
from domain.validation.ruleset import Rule, RuleKind, RuleSet
from domain.validation.scoring import RuleResult
from domain.validation.validation import Validation
from domain.workflows.definition import Compensation, RetryPolicy, StepDefinition, StepKind, WorkflowDefinition
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
    subject: str = ""  # the data subject the commands are about (ADR 0008)

    def ctx(self, actor: str = "alice") -> CommandContext:
        self.ticks += 1
        return CommandContext(
            at=BASE_TIME + timedelta(seconds=self.ticks),
            tenant_id=self.tenant_id,
            actor=actor,
            correlation_id=UUID(int=self.ticks),
            causation_id=UUID(int=self.ticks + 1),
            traceparent=f"00-{self.ticks:032x}-{self.ticks:016x}-01",
            subject=self.subject,
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


base_urls = st.sampled_from(["http://127.0.0.1:11434/v1", "https://llm.example.com", "https://a.example/v1/"])


@st.composite
def fallbacks(draw: st.DrawFn) -> list[Fallback]:
    """Valid fallback chains: an openai_compatible fallback always names its server."""
    chain = []
    for _ in range(draw(st.integers(0, 3))):
        provider = draw(st.sampled_from(sorted(PROVIDERS)))
        base_url = draw(base_urls) if provider == "openai_compatible" else draw(st.none() | base_urls)
        chain.append(Fallback(provider=provider, model=draw(names), base_url=base_url))
    return chain


@st.composite
def agent_configs(draw: st.DrawFn) -> dict[str, Any]:
    provider = draw(st.sampled_from(sorted(PROVIDERS)))
    return {
        "provider": provider,
        "model": draw(names),
        "system_prompt": draw(texts),
        "temperature": draw(st.floats(0, 2)),
        "max_tokens": draw(st.integers(1, 100_000)),
        "base_url": draw(base_urls) if provider == "openai_compatible" else draw(st.none() | base_urls),
        "fallbacks": draw(fallbacks()),
        "json_output": draw(st.booleans()),
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
        base_url=draw(st.none() | base_urls),
        fallbacks=draw(fallbacks()),
        json_output=draw(st.booleans()),
    )
    history = History(run, [first])
    # Terminal commands are drawn less often, so that histories get past the first attempt.
    ops = st.sampled_from(
        ["attempt", "attempt", "attempt_failed", "attempt_failed", "succeed", "fail", "cancel", "refuse"]
    )
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
                provider=draw(st.sampled_from(["", "anthropic"])),
                model=draw(names),
                fallback_errors=draw(st.lists(texts, max_size=2)),
            )
        elif op == "refuse":
            retry_at = draw(st.none() | st.just(BASE_TIME + timedelta(days=1)))
            history.attempt(run.refuse, ctx, reason="the daily token budget would be exceeded", retry_at=retry_at)
        elif op == "fail":
            history.attempt(run.fail, ctx, reason="gave up")
        else:
            history.attempt(run.cancel, ctx, reason="user")
    return history


UNDO = Compensation(kind="notify", params={"channel": "email", "recipient": "ops@example.com", "template": "undo"})


@st.composite
def step_params(draw: st.DrawFn, kind: str, needs: list[str]) -> dict[str, object]:
    """Valid parameters for a step of that kind."""
    if kind == "agent":
        output = draw(st.sampled_from(["text", "json"]))
        return {"agent": "writer", "prompt": "Write about {{ inputs }}", "output": output}
    if kind == "validate":
        on_failure = draw(st.sampled_from(["retry", "retry", "fail", "compensate"]))
        return {"ruleset": "quality", "target": draw(st.sampled_from(needs)), "on_failure": on_failure}
    if kind == "notify":
        return {"channel": "email", "recipient": "ops@example.com", "template": "done"}
    if kind == "approval":
        return {"signal": "approve", "on_timeout": draw(st.sampled_from(["reject", "approve"]))}
    return {"condition": "true"}


@st.composite
def workflow_definitions(draw: st.DrawFn, max_steps: int = 6) -> WorkflowDefinition:
    """Valid definitions: each step may need any earlier step, so the graph has no cycle."""
    count = draw(st.integers(1, max_steps))
    steps = []
    for index in range(count):
        needs = draw(st.lists(st.sampled_from([f"s{i}" for i in range(index)]), unique=True)) if index else []
        kinds: list[StepKind] = ["agent", "notify", "approval", "branch"]
        if needs:
            kinds.append("validate")
        kind = draw(st.sampled_from(kinds))
        steps.append(
            StepDefinition(
                id=f"s{index}",
                kind=kind,
                needs=needs,
                params=draw(step_params(kind, needs)),
                retry=RetryPolicy(
                    max_attempts=draw(st.integers(1, 3)), backoff_seconds=draw(st.sampled_from([0, 0.25]))
                ),
                timeout_seconds=draw(st.none() | st.sampled_from([0.5, 30.0])),
                compensate=draw(st.none() | st.just(UNDO)),
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
            "start",
            "feedback",
            "branch",
            "notify",
            "defer",
            "time_out",
        ]
    )
    wants = {"feedback": "validate", "branch": "branch", "notify": "notify", "defer": "agent", "time_out": None}
    for op in draw(st.lists(ops, max_size=40)):
        ready = instance.ready_steps()
        running = [
            step_id for step_id in instance.running_steps() if wants.get(op) in (None, definition.step(step_id).kind)
        ]
        if ready and op in ("run", "fail_for_good", "start"):
            step_id = draw(st.sampled_from(ready))
        elif running and op in wants:
            step_id = draw(st.sampled_from(running))  # a step these decisions apply to
        else:
            step_id = draw(st.sampled_from(step_ids))
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
            name = draw(st.sampled_from(["approve", "other", "Bad!"]))
            payload = draw(st.sampled_from([{}, {"approved": False}, {"approved": True, "comment": "ok"}]))
            roles = draw(st.sampled_from([["operator"], ["viewer"], ["admin"]]))
            history.attempt(instance.receive_signal, ctx, name=name, payload=payload, roles=roles)
        elif op == "feedback":
            history.attempt(instance.retry_with_feedback, ctx, step_id, feedback="too short")
        elif op == "branch":
            history.attempt(instance.complete_branch, ctx, step_id, taken=draw(st.booleans()))
        elif op == "notify":
            history.attempt(
                instance.request_notification, ctx, step_id, channel="email", recipient="a@b.c", subject="", body="hi"
            )
        elif op == "defer":
            history.attempt(instance.defer_step, ctx, step_id, until=ctx.at + timedelta(seconds=1), reason="budget")
        elif op == "time_out":
            history.attempt(instance.time_out, ctx, step_id)
        else:
            history.attempt(instance.cancel, ctx, reason="user")
    return history


@st.composite
def rules(draw: st.DrawFn) -> list[Rule]:
    count = draw(st.integers(1, 5))
    made = []
    for index in range(count):
        kind: RuleKind = draw(st.sampled_from(["regex", "length", "contains", "not_contains", "pii", "llm_judge"]))
        params: dict[str, Any] = {  # type: ignore[assignment]
            "regex": {"pattern": draw(st.sampled_from(["^a", "b+", r"\d{2}", "x|y"]))},
            "length": {"min": draw(st.integers(0, 5)), "max": draw(st.integers(5, 50))},
            "contains": {"text": draw(names)},
            "not_contains": {"text": draw(names)},
            "pii": {},
            "llm_judge": {"agent": draw(names), "rubric": draw(names), "pass_score": draw(st.floats(0, 1))},
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
    judge = Rule(id="judged", kind="llm_judge", params={"agent": "judge", "rubric": "Is it polite?"})
    rule_list = draw(rules()) + draw(st.lists(st.just(judge), max_size=1))
    ruleset, _ = RuleSet.define(clock.ctx(), UUID(int=5), name="r", rules=rule_list, threshold=draw(st.floats(0, 1)))
    validation, first = Validation.request(
        clock.ctx(),
        UUID(int=draw(st.integers(1, 2**64))),
        ruleset=ruleset,
        subject_type="agent_run",
        subject_id=draw(names),
        output=draw(texts),
    )
    history = History(validation, [first])
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["judge", "judge_failure", "complete"]))
        judged = [rule.id for rule in ruleset.rules if rule.kind == "llm_judge"] or ["r0"]
        rule_id = draw(st.sampled_from([*judged, "unknown"]))
        call = {"rule_id": rule_id, "agent_id": UUID(int=7), "provider": "scripted", "model": "judge-1"}
        if op == "judge":
            usage = {"tokens_in": draw(st.integers(0, 5000)), "tokens_out": draw(st.integers(0, 500))}
            reply = draw(st.sampled_from(['{"score": 0.8, "reason": "clear"}', "not json"]) | texts)
            history.attempt(
                validation.record_judgement,
                clock.ctx("validation-worker"),
                **call,
                **usage,
                agent_config_version=draw(st.integers(1, 3)),
                cost=draw(costs),
                latency_ms=draw(st.integers(0, 10_000)),
                reply=reply,
            )
        elif op == "judge_failure":
            error = draw(texts)
            retryable = draw(st.booleans())
            history.attempt(
                validation.record_judge_failure,
                clock.ctx("validation-worker"),
                **call,
                error=error,
                retryable=retryable,
            )
        else:
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


token_limits = st.none() | st.integers(0, 5_000)
cost_limits = st.none() | st.decimals(min_value=0, max_value=50, places=2, allow_nan=False, allow_infinity=False)
budget_limits = st.builds(
    BudgetLimits,
    tokens_per_day=token_limits,
    tokens_per_month=token_limits,
    cost_per_day=cost_limits,
    cost_per_month=cost_limits,
)


@st.composite
def budget_histories(draw: st.DrawFn) -> History:
    clock = Clock(tenant_id=draw(names))
    budget, first = Budget.define(clock.ctx("admin"), limits=draw(budget_limits))
    history = History(budget, [first])
    for _ in range(draw(st.integers(0, 4))):
        history.attempt(budget.revise, clock.ctx("admin"), limits=draw(budget_limits))
    return history


@st.composite
def budget_ledger_histories(draw: st.DrawFn) -> History:
    """Reservations and settlements of a few runs and judge calls over a few days of January, under random limits."""
    clock = Clock()
    ledger, first = BudgetLedger.open(clock.ctx("agent-worker"), month="2026-01")
    history = History(ledger, [first])
    runs = [UUID(int=n) for n in range(1, 6)]
    for _ in range(draw(st.integers(0, 12))):
        run_id, ctx = draw(st.sampled_from(runs)), clock.ctx("agent-worker")
        tokens, cost = draw(st.integers(0, 2_000)), draw(costs)
        if draw(st.booleans()):
            day = (BASE_TIME + timedelta(days=draw(st.integers(0, 3)))).date()
            limits = draw(budget_limits)
            charge = draw(st.sampled_from(["run", "judge"]))
            history.attempt(
                ledger.reserve, ctx, run_id=run_id, day=day, tokens=tokens, cost=cost, limits=limits, charge=charge
            )
        else:
            history.attempt(ledger.settle, ctx, run_id=run_id, tokens=tokens, cost=cost)
    return history


@st.composite
def saga_scenarios(draw: st.DrawFn) -> History:
    """A directed walk through the decisions random histories reach rarely: a deferral, a validation that
    sends its target back, a branch, a notification, then a failure that unwinds the saga (or a timeout)."""
    clock = Clock()
    check = {"ruleset": "q", "target": "draft", "on_failure": "retry", "max_retries": 1}
    definition = WorkflowDefinition(
        steps=[
            StepDefinition(id="draft", kind="agent", params={"agent": "w", "prompt": "p"}, compensate=UNDO),
            StepDefinition(id="check", kind="validate", needs=["draft"], params=check),
            StepDefinition(id="route", kind="branch", needs=["check"], params={"condition": "true"}),
            StepDefinition(id="tell", kind="notify", needs=["route"], params=dict(UNDO.params), compensate=UNDO),
            StepDefinition(id="ok", kind="approval", needs=["tell"], params={}, timeout_seconds=0.5),
        ]
    )
    instance_id = UUID(int=draw(st.integers(1, 2**64)))
    clock.subject = "customer-4711" if instance_id.int % 2 else ""  # half of them are about a data subject
    instance, first = WorkflowInstance.start(
        clock.ctx(), instance_id, template=new_template(clock, definition), inputs={}
    )
    history = History(instance, [first])
    ctx = clock.ctx
    history.attempt(instance.start_step, ctx(), "draft")
    history.attempt(instance.defer_step, ctx(), "draft", until=BASE_TIME, reason="budget")
    history.attempt(instance.start_step, ctx(), "draft")
    history.attempt(instance.complete_step, ctx(), "draft", output=draw(json_values))
    history.attempt(instance.start_step, ctx(), "check")
    history.attempt(instance.retry_with_feedback, ctx(), "check", feedback="too short")
    history.attempt(instance.start_step, ctx(), "draft")
    history.attempt(instance.complete_step, ctx(), "draft", output="longer")
    history.attempt(instance.start_step, ctx(), "check")
    history.attempt(instance.complete_step, ctx(), "check", output={"passed": True})
    history.attempt(instance.start_step, ctx(), "route")
    history.attempt(instance.complete_branch, ctx(), "route", taken=draw(st.booleans()))
    history.attempt(instance.start_step, ctx(), "tell")
    history.attempt(instance.request_notification, ctx(), "tell", channel="email", recipient="a", subject="", body="b")
    history.attempt(instance.start_step, ctx(), "ok")
    if draw(st.booleans()):
        history.attempt(instance.time_out, ctx(), "ok")
    else:
        history.attempt(instance.receive_signal, ctx(), name="approval", payload={"approved": False}, roles=["admin"])
    while (target := instance.next_compensation()) is not None:
        history.attempt(instance.record_compensation, ctx(), target)
    return history


@st.composite
def data_subject_histories(draw: st.DrawFn) -> History:
    clock = Clock(tenant_id=draw(names))
    subject = draw(st.from_regex(SUBJECT, fullmatch=True))
    erased, first = DataSubject.erase(clock.ctx("dpo"), subject=subject, reason=draw(texts))
    return History(erased, [first])


HISTORIES: dict[type[Aggregate], st.SearchStrategy[History]] = {
    Agent: agent_histories(),
    AgentRun: agent_run_histories(),
    Budget: budget_histories(),
    BudgetLedger: budget_ledger_histories(),
    WorkflowTemplate: template_histories(),
    WorkflowInstance: st.one_of(instance_histories(), saga_scenarios()),
    RuleSet: ruleset_histories(),
    Validation: validation_histories(),
    ApiKey: api_key_histories(),
    DataSubject: data_subject_histories(),
}
any_history = st.one_of(*HISTORIES.values())
