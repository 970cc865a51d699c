"""`aiwp demo`: `examples/support-triage.yaml` run by the orchestrator, shown live, on the embedded platform.

The agents answer through the scripted provider (`examples/support-triage.replies.yaml`) unless
`OPENAI_API_KEY` is set, then through OpenAI. The demo plays the operator who approves the reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from rich.console import Console
from rich.table import Table

from commands import agents, validation, workflows
from commands.unit_of_work import new_aggregate_id
from commands.workflow_file import read_workflow
from domain.agents.agent_run import AgentRun
from domain.aggregate import CommandContext
from domain.events import DomainEvent
from domain.validation.ruleset import Rule
from domain.validation.validation import Validation
from domain.workflows.instance import (
    FINAL,
    NotificationRequested,
    SignalReceived,
    StepAttemptFailed,
    StepCompleted,
    StepFailed,
    StepRetriedWithFeedback,
    StepStarted,
    WorkflowInstance,
)
from ops.bootstrap import Platform
from projections import tasks, token_usage, validation_results, workflow_instances

TENANT = "demo"
ACTOR = "demo-user"
APPROVER = "demo-approver"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
WORKFLOW_FILE = EXAMPLES / "support-triage.yaml"
REPLIES_FILE = EXAMPLES / "support-triage.replies.yaml"
INPUTS = {
    "ticket": "I was charged twice for my March invoice (INV-2041). Please fix it. -- Ada",
    "customer_email": "ada@example.com",
}
REPLY_QUALITY = [
    Rule(id="reference", kind="regex", weight=2.0, params={"pattern": r"Ref: [A-Z]+-\d+"}),
    Rule(id="length", kind="length", params={"min": 60, "max": 1200}),
    Rule(id="no-ai-disclaimer", kind="not_contains", params={"text": "as an AI"}),
    Rule(id="no-card-numbers", kind="pii", params={"kinds": ["card"]}),
]


def agent_provider(environ: Mapping[str, str]) -> tuple[str, str]:
    return ("openai", "gpt-4o-mini") if environ.get("OPENAI_API_KEY") else ("scripted", "scripted-1")


async def set_up(platform: Platform, environ: Mapping[str, str]) -> UUID:
    """Registers the example's agents, its rule set and its template; returns the template's id."""
    store = platform.store

    def ctx() -> CommandContext:
        return platform.context(tenant_id=TENANT, actor=ACTOR)

    provider, model = agent_provider(environ)
    for name, system_prompt in (
        ("triage-classifier", "You sort support tickets. Answer with JSON only."),
        ("support-writer", "You write short, polite replies to customers."),
    ):
        command = agents.RegisterAgent(
            name=name, provider=provider, model=model, system_prompt=system_prompt, idempotency_key=name
        )
        await agents.register_agent(store, ctx(), command)
    rules = validation.DefineRuleSet(
        name="reply-quality", rules=REPLY_QUALITY, threshold=0.8, idempotency_key="reply-quality"
    )
    await validation.define_ruleset(store, ctx(), rules)
    example = read_workflow(WORKFLOW_FILE.read_bytes())
    template = await workflows.register_workflow_template(
        store,
        ctx(),
        workflows.RegisterWorkflowTemplate(
            name=example.name, definition=example.definition, idempotency_key=example.name
        ),
    )
    # The orchestrator finds agents and rule sets by name in the read models.
    await platform.wait_for(template.position, timeout=30, names=["agents", "scoring_models"])
    return template.id


async def run_demo(platform: Platform, console: Console, environ: Mapping[str, str]) -> tuple[UUID, int]:
    """Starts one instance and prints its events as they happen; approves when asked to."""
    template_id = await set_up(platform, environ)
    started = await workflows.start_workflow_instance(
        platform.store,
        platform.context(tenant_id=TENANT, actor=ACTOR),
        workflows.StartWorkflowInstance(template_id=template_id, inputs=INPUTS),
    )
    console.print(f"[bold]support-triage[/bold] instance {started.id} started\n")
    shown = 1
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while True:
        instance = await platform.store.get(WorkflowInstance, started.id)
        events = platform.store.events_of(started.id)[shown:]
        for event in events:
            console.print(describe(event))
        shown += len(events)
        if instance.status in FINAL:
            break
        if "approve" in instance.running_steps():
            await workflows.signal_workflow_instance(
                platform.store,
                platform.context(tenant_id=TENANT, actor=APPROVER),
                workflows.SignalWorkflowInstance(
                    instance_id=started.id,
                    name="approval",
                    payload={"comment": "auto-granted by the demo"},
                    roles=["operator"],
                ),
            )
            continue
        if loop.time() > deadline:
            raise RuntimeError(f"the instance is still {instance.status} after 120 s")
        await asyncio.sleep(0.05)
    console.print(f"\n[bold]instance {instance.status}[/bold] at version {instance.version}\n")
    await print_outcome(platform, console, instance)
    return started.id, await platform.store.position_of(started.id, instance.version)


def describe(event: DomainEvent) -> str:
    at = event.timestamp.strftime("%H:%M:%S.%f")[:-3]
    who = event.metadata.actor
    match event:
        case StepStarted():
            what = f"[cyan]{event.step_id}[/cyan] started (attempt {event.attempt})"
        case StepCompleted():
            what = f"[cyan]{event.step_id}[/cyan] completed: {excerpt(event.output)}"
        case StepAttemptFailed() | StepFailed():
            what = f"[cyan]{event.step_id}[/cyan] [red]failed[/red]: {excerpt(event.error)}"
        case StepRetriedWithFeedback():
            feedback = " / ".join(event.feedback.splitlines())
            what = f"[cyan]{event.step_id}[/cyan] sends [cyan]{event.target}[/cyan] back: {excerpt(feedback)}"
        case SignalReceived():
            what = f"signal [magenta]{event.name}[/magenta] {excerpt(event.payload)}"
        case NotificationRequested():
            what = f"[cyan]{event.step_id}[/cyan] {event.channel} to {event.recipient}: {excerpt(event.subject)}"
        case _:
            what = type(event).__name__
    return f"  {at}  {who:<14} {what}"


def excerpt(value: Any, limit: int = 100) -> str:
    text = value if isinstance(value, str) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def print_outcome(platform: Platform, console: Console, instance: WorkflowInstance) -> None:
    """The runs and validations the instance made: outputs, scores, tokens and cost."""
    ctx = platform.context(tenant_id=instance.tenant_id, actor=ACTOR)
    table = Table(title="what it made", title_justify="left")
    for column in ("step", "attempt", "kind", "model / score", "tokens in/out", "cost", "output"):
        table.add_column(column, overflow="fold")
    tokens_in = tokens_out = 0
    cost = Decimal(0)
    for event in platform.store.events_of(instance.id):
        if not isinstance(event, StepStarted):
            continue
        kind = instance.definition.step(event.step_id).kind
        key = f"{instance.id}/{event.step_id}/{event.attempt}"
        if kind == "agent":
            run = await platform.store.get(AgentRun, new_aggregate_id(ctx, AgentRun, key))
            tokens_in, tokens_out, cost = tokens_in + run.tokens_in, tokens_out + run.tokens_out, cost + run.cost
            table.add_row(
                event.step_id,
                str(event.attempt),
                "agent run",
                f"{run.provider}/{run.model}",
                f"{run.tokens_in}/{run.tokens_out}",
                f"${run.cost:.6f}",
                excerpt(run.output, 70),
            )
        elif kind == "validate":
            check = await platform.store.get(Validation, new_aggregate_id(ctx, Validation, key))
            verdict = "passed" if check.passed else "failed"
            table.add_row(event.step_id, str(event.attempt), "validation", f"{check.score:.2f} {verdict}", "", "", "")
    table.add_row("total", "", "", "", f"{tokens_in}/{tokens_out}", f"${cost:.6f}", "")
    console.print(table)


async def print_read_models(platform: Platform, console: Console, instance_id: UUID) -> None:
    """What the projections made of it: the query side's view of the same run."""
    async with platform.pool.acquire() as conn:
        instance = await workflow_instances.get_workflow_instance(conn, TENANT, instance_id)
        steps = await tasks.list_tasks(conn, TENANT, instance_id)
        usage = await token_usage.list_token_usage(conn, TENANT)
        checks = await validation_results.list_validations(conn, TENANT)
        audited = await conn.fetchval("SELECT count(*) FROM audit_events WHERE tenant_id = $1", TENANT)
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
    for row in checks:
        table.add_row("validation_results", f"score {row['score']:.2f}, passed={row['passed']}")
    table.add_row("audit_events", f"{audited} events of the demo tenant, hash-chained")
    console.print(table)
