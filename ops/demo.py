"""`aiwp demo`: one support-triage workflow driven step by step, with scripted agent replies.

It uses the same command handlers as every other entry point. Until the orchestrator and the
agent worker exist, this module plays their part in-process so that the whole write side can
be seen working.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from rich.console import Console
from rich.table import Table

from commands import agents, validation, workflows
from commands.ports import EventStore
from domain.agents.agent_run import AgentRun
from domain.aggregate import CommandContext
from domain.validation.ruleset import Rule
from domain.validation.validation import Validation
from domain.workflows.definition import Compensation, RetryPolicy, StepDefinition, WorkflowDefinition
from domain.workflows.instance import WorkflowInstance
from ops.bootstrap import Platform
from ops.prices import price_table
from projections import tasks, token_usage, validation_results, workflow_instances

TENANT = "demo"
ACTOR = "demo-user"

SCRIPTED_REPLIES = {
    "classify": "billing",
    "draft": (
        "Hello Ada, thanks for writing to us. We refunded the duplicate charge on your last invoice; "
        "it will appear within five working days."
    ),
}

DEFINITION = WorkflowDefinition(
    inputs=["ticket"],
    steps=[
        StepDefinition(id="classify", kind="agent", params={"agent": "triage-classifier"}),
        StepDefinition(
            id="draft",
            kind="agent",
            needs=["classify"],
            params={"agent": "support-writer"},
            retry=RetryPolicy(max_attempts=2),
            compensate=Compensation(kind="notify", params={"template": "draft-withdrawn"}),
        ),
        StepDefinition(id="check", kind="validate", needs=["draft"], params={"ruleset": "reply-quality"}),
        StepDefinition(id="notify", kind="notify", needs=["check"], params={"channel": "email"}),
    ],
)


async def run_demo(platform: Platform, console: Console) -> tuple[UUID, int]:
    """Registers the demo's agents, rule set and template, runs one instance, prints every stream."""
    store = platform.store

    def ctx() -> CommandContext:
        return platform.context(tenant_id=TENANT, actor=ACTOR)

    classifier = await agents.register_agent(
        store, ctx(), agents.RegisterAgent(name="triage-classifier", provider="scripted", model="scripted-1")
    )
    writer = await agents.register_agent(
        store,
        ctx(),
        agents.RegisterAgent(
            name="support-writer", provider="scripted", model="scripted-1", system_prompt="Answer politely."
        ),
    )
    agent_ids = {"triage-classifier": classifier.id, "support-writer": writer.id}
    ruleset = await validation.define_ruleset(
        store,
        ctx(),
        validation.DefineRuleSet(
            name="reply-quality",
            threshold=0.7,
            rules=[
                Rule(id="length", kind="length", params={"min": 40, "max": 2000}),
                Rule(id="no-ai-disclaimer", kind="not_contains", params={"text": "as an AI"}),
                Rule(id="no-pii", kind="pii", weight=2.0),
            ],
        ),
    )
    template = await workflows.register_workflow_template(
        store, ctx(), workflows.RegisterWorkflowTemplate(name="support-triage", definition=DEFINITION)
    )
    started = await workflows.start_workflow_instance(
        store,
        ctx(),
        workflows.StartWorkflowInstance(
            template_id=template.id, inputs={"ticket": "I was charged twice this month. -- Ada"}
        ),
    )
    console.print(f"[bold]workflow instance[/bold] {started.id} started at position {started.position}")

    streams: list[tuple[str, UUID]] = [
        ("agent triage-classifier", classifier.id),
        ("agent support-writer", writer.id),
        ("rule set reply-quality", ruleset.id),
        ("template support-triage", template.id),
        ("instance", started.id),
    ]
    instance = await store.get(WorkflowInstance, started.id)
    while instance.status == "running":
        for step_id in instance.ready_steps():
            await workflows.start_step(store, ctx(), workflows.StartStep(instance_id=started.id, step_id=step_id))
            step = instance.definition.step(step_id)
            output, stream = await execute_step(
                store, platform, step=step, agent_ids=agent_ids, ruleset_id=ruleset.id, instance=instance
            )
            if stream is not None:
                streams.append(stream)
            done = await workflows.complete_step(
                store, ctx(), workflows.CompleteStep(instance_id=started.id, step_id=step_id, output=output)
            )
            console.print(f"  step [cyan]{step_id}[/cyan] ({step.kind}) completed: {output}")
        instance = await store.get(WorkflowInstance, started.id)
    console.print(f"[bold]instance {instance.status}[/bold] at version {instance.version}\n")
    for title, stream_id in streams:
        print_stream(console, store, title, stream_id)
    return started.id, done.position


async def print_read_models(platform: Platform, console: Console, instance_id: UUID) -> None:
    """What the projections made of it: the query side's view of the same run."""
    async with platform.pool.acquire() as conn:
        instance = await workflow_instances.get_workflow_instance(conn, TENANT, instance_id)
        steps = await tasks.list_tasks(conn, TENANT, instance_id)
        usage = await token_usage.list_token_usage(conn, TENANT)
        checks = await validation_results.list_validations(conn, TENANT)
        audited = await conn.fetchval("SELECT count(*) FROM audit_events WHERE correlation_id = $1", instance_id)
    assert instance is not None
    table = Table(title="read models (query side)", title_justify="left")
    table.add_column("read model")
    table.add_column("row", overflow="fold")
    table.add_row(
        "workflow_instances", f"{instance['template_name']} v{instance['template_version']}: {instance['status']}"
    )
    for step in steps:
        table.add_row("tasks", f"{step['step_id']}: {step['status']} after {step['attempts']} attempt(s)")
    for row in usage:
        table.add_row(
            "token_usage",
            f"{row['day']} {row['model']}: {row['runs']} runs, {row['tokens_in']} in, "
            f"{row['tokens_out']} out, ${row['cost']:.6f}",
        )
    for row in checks[-1:]:
        table.add_row("validation_results", f"score {row['score']:.2f}, passed={row['passed']}")
    table.add_row("audit_events", f"{audited} events of this instance's conversation, hash-chained")
    console.print(table)


async def execute_step(
    store: EventStore,
    platform: Platform,
    *,
    step: StepDefinition,
    agent_ids: dict[str, UUID],
    ruleset_id: UUID,
    instance: WorkflowInstance,
) -> tuple[Any, tuple[str, UUID] | None]:

    def ctx() -> CommandContext:
        return platform.context(tenant_id=TENANT, actor="demo-orchestrator", correlation_id=instance.id)

    if step.kind == "agent":
        prompt = f"{step.id}: {instance.inputs['ticket']}"
        run = await agents.request_agent_run(
            store, ctx(), agents.RequestAgentRun(agent_id=agent_ids[step.params["agent"]], prompt=prompt)
        )
        await agents.start_run_attempt(
            store, ctx(), agents.StartRunAttempt(run_id=run.id, provider="scripted", model="scripted-1")
        )
        reply = SCRIPTED_REPLIES[step.id]
        tokens_in, tokens_out = len(prompt.split()) * 2, len(reply.split()) * 2
        cost = price_table(platform.settings.prices).cost("scripted", "scripted-1", tokens_in, tokens_out)
        await agents.complete_agent_run(
            store,
            ctx(),
            agents.CompleteAgentRun(
                run_id=run.id, output=reply, latency_ms=0, tokens_in=tokens_in, tokens_out=tokens_out, cost=cost
            ),
        )
        finished = await store.get(AgentRun, run.id)
        return finished.output, (f"agent run {step.id}", run.id)
    if step.kind == "validate":
        draft = instance.steps["draft"].output if "draft" in instance.steps else ""
        opened = await validation.request_validation(
            store,
            ctx(),
            validation.RequestValidation(
                ruleset_id=ruleset_id, subject_type="workflow_step", subject_id=f"{instance.id}/draft", output=draft
            ),
        )
        pending = await store.get(Validation, opened.id)
        results = validation.evaluate_local_rules(pending.rules, draft)
        await validation.complete_validation(
            store, ctx(), validation.CompleteValidation(validation_id=opened.id, results=results)
        )
        done = await store.get(Validation, opened.id)
        return {"score": done.score, "passed": done.passed}, (f"validation {step.id}", opened.id)
    return {"queued": step.params.get("channel", "")}, None


def print_stream(console: Console, store: Any, title: str, stream_id: UUID) -> None:
    table = Table(title=f"{title} — {stream_id}", title_justify="left", expand=False)
    for column in ("v", "event", "at", "actor", "data"):
        table.add_column(column, overflow="fold")
    for event in store.events_of(stream_id):
        data = {
            field: getattr(event, field)
            for field in event.__struct_fields__
            if field not in ("originator_id", "originator_version", "timestamp", "metadata")
        }
        table.add_row(
            str(event.originator_version),
            type(event).__name__,
            event.timestamp.strftime("%H:%M:%S.%f")[:-3],
            event.metadata.actor,
            summarize(data),
        )
    console.print(table)


def summarize(data: dict[str, Any], limit: int = 90) -> str:
    text = ", ".join(f"{key}={value!s}" for key, value in data.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"
