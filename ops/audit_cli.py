"""`aiwp audit`: what an auditor runs against the audit trail. Nothing here writes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from ops.events_cli import Json, console, run
from ops.inspection import Log
from projections.audit_verification import Verdict, audit_rows, verify

audit_app = typer.Typer(help="Check the audit trail.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    start: Annotated[int, typer.Option("--from", min=0, help="The first position to check.")] = 0,
    end: Annotated[int | None, typer.Option("--to", min=0, help="The last position to check.")] = None,
    as_json: Json = False,
) -> None:
    """Walk the hash chain and name the first row that does not verify (exit 1), or say it all holds.

    Example: aiwp audit verify --from 1 --to 250000 --json
    """
    verdict: list[Verdict] = []

    async def work(log: Log) -> None:
        async with log.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            first = start == 0 or not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM audit_events WHERE position < $1)", start
            )
            with Progress(
                SpinnerColumn(), TextColumn("{task.description}"), console=console, disable=as_json, transient=True
            ) as bar:
                task = bar.add_task("verifying", total=None)

                async def counted() -> AsyncIterator[Any]:
                    seen = 0
                    async for row in audit_rows(conn, start, end):
                        seen += 1
                        if seen % 10_000 == 0:
                            bar.update(task, description=f"verifying: {seen:,} rows, position {row['position']}")
                        yield row

                verdict.append(await verify(counted(), first=first))

    run(work)
    outcome = verdict[0]
    if as_json:
        typer.echo(
            json.dumps(
                {"ok": outcome.ok, "rows": outcome.rows, "first_bad": outcome.first_bad, "reason": outcome.reason}
                | ({"head": outcome.head.hex()} if outcome.ok else {})
            )
        )
    elif outcome.ok:
        console.print(f"the chain holds: {outcome.rows:,} rows verified; head {outcome.head.hex()}")
    else:
        console.print(f"[red]position {outcome.first_bad} does not verify[/red]: {outcome.reason}")
    if not outcome.ok:
        raise typer.Exit(1)
