"""The trace document from streams in hand: a saga that unwinds, its compensation run found and linked."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

from commands.unit_of_work import new_aggregate_id
from domain.agents.agent_run import AgentRun, ChatMessage
from domain.aggregate import CommandContext
from domain.envelope import event_id_of
from domain.events import DomainEvent, StepRef
from domain.workflows.definition import Compensation, StepDefinition, WorkflowDefinition
from domain.workflows.instance import WorkflowInstance, WorkflowInstanceStarted
from ops.trace import Child, build_trace, expected_children
from projections.projection import Recorded
from tests.strategies import Clock

DEFINITION = WorkflowDefinition(
    steps=[
        StepDefinition(
            id="charge",
            kind="agent",
            params={"agent": "biller", "prompt": "Charge it."},
            compensate=Compensation(kind="agent", params={"agent": "biller", "prompt": "Refund it."}),
        ),
        StepDefinition(id="ship", kind="agent", needs=["charge"], params={"agent": "shipper", "prompt": "Ship it."}),
    ]
)


class Log:
    """Events numbered in the order they are written, as the store numbers them."""

    def __init__(self) -> None:
        self.recorded: list[Recorded] = []

    def add(self, *events: DomainEvent) -> None:
        for event in events:
            self.recorded.append(Recorded(len(self.recorded) + 1, event))

    def of(self, stream: object) -> list[Recorded]:
        return [r for r in self.recorded if r.event.originator_id == stream]


def caused_by(ctx: CommandContext, event: DomainEvent) -> CommandContext:
    return CommandContext(
        at=ctx.at,
        tenant_id=ctx.tenant_id,
        actor=ctx.actor,
        correlation_id=ctx.correlation_id,
        causation_id=event_id_of(event.originator_id, event.originator_version),
    )


def test_a_compensation_run_is_found_by_its_derived_id_and_every_child_leads_back_to_the_instance() -> None:
    clock, log = Clock(), Log()
    started = WorkflowInstanceStarted(
        originator_id=uuid4(),
        originator_version=1,
        timestamp=clock.ctx().at,
        metadata=clock.ctx().metadata(),
        template_id=uuid4(),
        template_name="order",
        template_version=1,
        definition=DEFINITION,
        inputs={},
    )
    log.add(started)
    instance = WorkflowInstance.created_by(started)

    def run(step: str, attempt: int, key: str, cause: DomainEvent, *, succeed: bool) -> DomainEvent:
        ctx = caused_by(clock.ctx("orchestrator"), cause)
        run_id = new_aggregate_id(ctx, AgentRun, f"{instance.id}/{key}")
        made, requested = AgentRun.request(
            ctx,
            run_id,
            agent_id=uuid4(),
            agent_config_version=1,
            provider="scripted",
            model="m",
            temperature=0.0,
            max_tokens=10,
            messages=[ChatMessage("user", "go")],
            workflow_step=StepRef(instance_id=instance.id, step_id=step, attempt=attempt),
        )
        log.add(requested, *made.start_attempt(clock.ctx("agent-worker"), provider="scripted", model="m"))
        worker = clock.ctx("agent-worker")
        ending = (
            made.succeed(
                worker,
                output="ok",
                latency_ms=5,
                tokens_in=3,
                tokens_out=2,
                cost=Decimal("0.01"),
                provider_request_id="r",
            )
            if succeed
            else made.fail(worker, reason="out of stock")
        )
        log.add(*ending)
        return ending[-1]

    log.add(*instance.start_ready_steps(caused_by(clock.ctx("orchestrator"), started)))
    charged = run("charge", 1, "charge/1", started, succeed=True)
    ctx = caused_by(clock.ctx("orchestrator"), charged)
    log.add(*instance.complete_step(ctx, "charge", output="ok"), *instance.start_ready_steps(ctx))
    failed = run("ship", 1, "ship/1", charged, succeed=False)
    log.add(*instance.fail_step(caused_by(clock.ctx("orchestrator"), failed), "ship", error="out of stock"))
    refunded = run("charge", 1, "charge/compensate", failed, succeed=True)
    log.add(*instance.record_compensation(caused_by(clock.ctx("orchestrator"), refunded), "charge"))

    history = log.of(instance.id)
    children = expected_children(history)
    assert [(c.kind, c.role, c.step) for c in children] == [
        ("agent_run", "step", "charge"),
        ("agent_run", "step", "ship"),
        ("agent_run", "compensation", "charge"),
    ]
    trace = build_trace(history, [(c, log.of(c.stream_id)) for c in children])

    assert [e["position"] for e in trace["events"]] == [r.position for r in log.recorded]
    assert trace["status"] == "compensated"
    assert [c["label"] for c in trace["children"]] == ["run charge#1", "run ship#1", "run charge (compensation)"]
    assert all(c["reaches_instance"] for c in trace["children"])
    assert trace["children"][2]["status"] == "succeeded"
    assert [(s["step"], s["outcome"]) for s in trace["steps"]] == [("charge", "completed"), ("ship", "failed")]
    assert (trace["totals"]["tokens_in"], trace["totals"]["cost"]) == (6, "0.02")
    assert trace["totals"]["runs"] == 3
    assert trace["events"][0]["cause"] == {"kind": "external", "id": str(started.metadata.causation_id)}
    assert Child(children[2].stream_id, "agent_run", "compensation", "charge", 0).label == "run charge (compensation)"
