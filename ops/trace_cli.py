"""`aiwp trace INSTANCE_ID`: the forensic timeline of one workflow instance. Nothing here writes.

Everything comes from the event store, read in one read-only snapshot: the instance's stream, then the
runs and validations it made (ids derived as the orchestrator derives them), plus any other stream the
audit trail files under the instance's correlation id whose request names a step of this instance.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from ops.disclosure import Disclosure
from ops.events_cli import BadInput, console, run
from ops.inspection import Log
from ops.trace import Child, NotAnInstance, build_trace, child_of, expected_children, instance_started
from projections.projection import Connection, Recorded

_encoder = msgspec.json.Encoder(decimal_format="string")
Json = Annotated[bool, typer.Option("--json", help="One JSON document, for scripts.")]


def instance_id_of(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise BadInput(f"{text!r} is not an instance id (a UUID)") from None


async def read_stream(door: Disclosure, conn: Connection, stream_id: UUID) -> list[Recorded]:
    """One stream, each event passed through the disclosure door once."""
    return [Recorded(r.position, await door.event(r.event)) for r in await door.log.reader.stream(conn, stream_id)]


async def audited_streams(conn: Connection, correlation_id: UUID) -> list[UUID]:
    """Streams the audit trail files under the correlation id (it may lag: a supplement, never the source)."""
    if await conn.fetchval("SELECT to_regclass('audit_events')") is None:
        return []
    rows = await conn.fetch("SELECT DISTINCT stream_id FROM audit_events WHERE correlation_id = $1", correlation_id)
    return [row["stream_id"] for row in rows]


async def read_trace(log: Log, instance_id: UUID, *, quiet: bool) -> dict[str, Any]:
    door = Disclosure(log)
    async with log.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        history = await read_stream(door, conn, instance_id)
        if not history:
            raise BadInput(f"no workflow instance {instance_id} in the event store")
        try:
            started = instance_started(history)
        except NotAnInstance:
            kind = type(history[0].event).__name__
            raise BadInput(f"{instance_id} is not a workflow instance (its stream starts with {kind})") from None
        expected = expected_children(history)
        children: list[tuple[Child, list[Recorded]]] = []
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            disable=quiet or not console.is_terminal,
            transient=True,
        ) as bar:
            task = bar.add_task("reading runs and validations", total=len(expected))
            for child in expected:
                events = await read_stream(door, conn, child.stream_id)
                if child_of(instance_id, events, child) is not None:
                    children.append((child, events))
                bar.advance(task)
            known = {instance_id} | {child.stream_id for child in expected}
            for stream_id in await audited_streams(conn, started.metadata.correlation_id):
                if stream_id in known:
                    continue
                events = await read_stream(door, conn, stream_id)
                found = child_of(instance_id, events)
                if found is not None:
                    children.append((found, events))
    return build_trace(history, children)


def trace(
    instance_id: Annotated[str, typer.Argument(help="The workflow instance's id.")], as_json: Json = False
) -> None:
    """The forensic timeline of one workflow instance: its events and those of its runs and validations,
    linked by causation, with durations, tokens, cost, and who did what.

    Example: aiwp trace 0b8f6c1e-6a57-4b8e-9d43-2f0f1f5a7c11 --json
    """

    async def work(log: Log) -> None:
        document = await read_trace(log, instance_id_of(instance_id), quiet=as_json)
        if as_json:
            typer.echo(_encoder.encode(document).decode())
        else:
            show(document)

    run(work)


def cause_text(cause: dict[str, Any]) -> str:
    match cause["kind"]:
        case "event":
            return f"#{cause['position']}"
        case "external":
            return f"ext {cause['id'][:8]}"
        case kind:
            return str(kind)


def show(document: dict[str, Any]) -> None:
    console.print(
        Text(
            f"{document['template']} v{document['template_version']} instance {document['instance_id']}:"
            f" {document['status']} (tenant {document['tenant']})",
            style="bold",
        )
    )
    table = Table(title="timeline (log order)", title_justify="left")
    for column in ("pos", "time", "+elapsed", "stream", "event", "actor", "caused by", "tokens in/out", "cost"):
        table.add_column(column, overflow="fold")
    for e in document["events"]:
        tokens = f"{e['tokens_in']}/{e['tokens_out']}" if "tokens_in" in e else ""
        stream = e["stream"] if e["kind"] != "instance" or not e["step"] else f"instance {e['step']}"
        table.add_row(
            *map(
                Text,
                (
                    str(e["position"]),
                    e["time"][11:23],
                    f"+{e['elapsed_seconds']:.3f}s",
                    stream,
                    e["type"],
                    e["actor"],
                    cause_text(e["cause"]),
                    tokens,
                    e.get("cost", ""),
                ),
            )
        )
    console.print(table)
    steps = Table(title="steps", title_justify="left")
    for column in ("step", "kind", "attempt", "outcome", "seconds", "run / validation"):
        steps.add_column(column, overflow="fold")
    for s in document["steps"]:
        took = f"{s['seconds']:.3f}" if s["seconds"] is not None else ""
        steps.add_row(*map(Text, (s["step"], s["kind"], str(s["attempt"]), s["outcome"], took, s["child"] or "")))
    console.print(steps)
    children = Table(title="runs and validations", title_justify="left")
    for column in ("child", "status", "model / score", "tokens in/out", "cost", "requested via"):
        children.add_column(column, overflow="fold")
    for c in document["children"]:
        if c["kind"] == "agent_run":
            what, tokens, cost = c["model"], f"{c['tokens_in']}/{c['tokens_out']}", c["cost"]
        else:
            verdict = "" if c["score"] is None else f"{c['score']:.2f} {'passed' if c['passed'] else 'failed'}"
            what, tokens, cost = verdict, "", ""
        via = " → ".join(f"#{p}" for p in c["chain"]) + ("" if c["reaches_instance"] else " (not linked)")
        children.add_row(*map(Text, (c["label"], c["status"], what, tokens, cost, via)))
    console.print(children)
    t = document["totals"]
    console.print(
        f"wall {t['wall_seconds']:.3f}s · {t['events']} events · {t['step_attempts']} step attempts ·"
        f" {t['runs']} runs ({t['run_attempts']} calls) · {t['validations']} validations"
        f" ({t['validations_passed']} passed) · {t['judge_calls']} judge calls",
        highlight=False,
    )
    console.print(
        f"tokens {t['tokens_in']} in / {t['tokens_out']} out · cost {t['cost']}"
        f" (runs {t['run_cost']}, judges {t['judge_cost']})",
        highlight=False,
    )
    for step, took in t["step_seconds"].items():
        console.print(f"  {step}: {took:.3f}s", highlight=False)
    for a in document["approvals"]:
        console.print(Text(f"{a['step']}: {a['decision']} by {a['by']} at {a['time']} {a['comment']}".rstrip()))
    for a in document["actors"]:
        did = ", ".join(f"{kind}×{n}" for kind, n in a["did"].items())
        console.print(Text(f"{a['actor']}: {did}"))
