"""`aiwp replay`: the past rebuilt from the store.

`replay aggregate ID --at POS|TIME` folds one stream's events up to a position of the global log or a time —
the aggregate as it stood then, by the same code that folds it for every command. It writes nothing.

`replay projection NAME|--all` rebuilds read models from the store into shadow tables (see
`adapters.projection_rebuild`): swapped in for the live ones, compared with them (`--verify`), or, as of a
position or time, summed for comparison with what the live ones held then. It writes only read models, never
the event store, and sends nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.projection_rebuild import ReplayBusy, ShadowRebuild, TableSum
from domain.catalog import aggregate_of
from ops.disclosure import Disclosure
from ops.events_cli import BadInput, Json, console, run, stream_id_of
from ops.inspection import Log
from projections.audit_events import NAME as AUDIT
from projections.catalog import PROJECTIONS
from projections.projection import Projection

replay_app = typer.Typer(help="Rebuild the past from the event store.", no_args_is_help=True)
_encoder = msgspec.json.Encoder(decimal_format="string")


def moment_of(text: str, option: str = "--at") -> int | datetime:
    """A position of the log (a whole number) or an ISO 8601 time (UTC when it names no zone)."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{option} {text!r} is neither a position nor an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@replay_app.command("aggregate")
def replay_aggregate(
    stream_id: Annotated[str, typer.Argument(help="The aggregate's id.")],
    at: Annotated[str, typer.Option("--at", help="A position of the global log, or a time (ISO 8601).")],
    as_json: Json = False,
) -> None:
    """Time travel: one aggregate's state as of a position of the log or a time.

    Example: aiwp replay aggregate 68433dc5-676f-4680-bdfe-1ee4bb8da195 --at 2026-11-26T13:21:10Z --json
    """

    async def work(log: Log) -> None:
        wanted, moment = stream_id_of(stream_id), moment_of(at)
        async with log.pool.acquire() as conn:
            history = await log.reader.stream(conn, wanted)
        if not history:
            raise BadInput(f"no stream {wanted} in the event store")
        if isinstance(moment, int):
            kept = [r.event for r in history if r.position <= moment]
        else:
            kept = [r.event for r in history if r.event.timestamp <= moment]
        if not kept:
            raise BadInput(f"stream {wanted} did not exist yet at {at}")
        kind = aggregate_of(type(kept[0]))
        state = kind.project(kept)
        assert state is not None
        tenant = kept[0].metadata.tenant_id
        shown = await Disclosure(log).disclose(msgspec.to_builtins(state), tenant)  # sealed data opened or [erased]
        document = {"aggregate": kind.__name__, "as_of": at, "state": shown}
        text = _encoder.encode(document).decode()
        if as_json:
            typer.echo(text)
        else:
            console.print(f"[bold]{kind.__name__}[/bold] {wanted} at version {state.version}, as of {at}")
            console.print_json(text)

    run(work)


def chosen_projections(names: Sequence[str], every: bool, *, replace: bool) -> list[Projection]:
    """The projections asked for; `replace`: they are to be swapped in, which the audit trail never is."""
    if bool(names) == every:
        raise BadInput("name the projections to rebuild, or give --all (not both)")
    unknown = [name for name in names if name not in PROJECTIONS]
    if unknown:
        raise BadInput(f"no projection {unknown[0]!r}; there are: {', '.join(PROJECTIONS)}")
    if replace and AUDIT in names:
        raise BadInput(f"{AUDIT} is the append-only audit trail and is never replaced; check it with --verify")
    picked = list(PROJECTIONS) if every else list(dict.fromkeys(names))
    return [PROJECTIONS[name] for name in picked if not (replace and name == AUDIT)]


def sums_table(title: str, sums: Sequence[TableSum]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("table", "rows", "checksum"):
        table.add_column(column)
    for found in sums:
        table.add_row(found.table, f"{found.rows:,}", found.digest[:16])
    return table


@replay_app.command("projection")
def replay_projection(
    *,
    names: Annotated[list[str] | None, typer.Argument(help="The projections to rebuild.", show_default=False)] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every projection (the audit trail only with --verify).")
    ] = False,
    to_position: Annotated[
        int | None, typer.Option("--to-position", min=0, help="Rebuild as of this position; nothing is swapped.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Rebuild as of this time (ISO 8601); nothing is swapped.")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Compare the rebuild with the live tables, row by row; swap nothing.")
    ] = False,
    keep: Annotated[
        bool, typer.Option("--keep", help="With --to-position/--until: keep the rebuilt tables to query them.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Rebuild read models from the event store into shadow tables, then swap them in while the live ones serve.

    With --verify the shadow tables are compared with the live ones and every differing row is reported
    (exit 1 when any differs). With --to-position or --until the rebuild stops there and prints each table's
    row count and checksum, to compare with what the live tables held then.

    Example: aiwp replay projection executions workflow_instances
    Example: aiwp replay projection --all --verify --json
    Example: aiwp replay projection --all --to-position 12000 --keep
    """
    as_of = to_position is not None or until is not None
    outcome: dict[str, Any] = {}

    async def work(log: Log) -> None:
        if to_position is not None and until is not None:
            raise BadInput("give --to-position or --until, not both")
        if verify and as_of:
            raise BadInput("--verify compares with the live tables as they are now; leave out --to-position/--until")
        if keep and not as_of:
            raise BadInput("--keep goes with --to-position or --until")
        moment = moment_of(until, "--until") if until is not None else None
        if isinstance(moment, int):
            raise BadInput("--until takes a time; use --to-position for a position")
        projections = chosen_projections(names or [], every, replace=not (verify or as_of))
        async with log.pool.acquire() as conn:
            head = await log.reader.head(conn)
        if to_position is not None and to_position > head:
            raise BadInput(f"--to-position {to_position} is beyond the log's head, position {head}")
        try:
            async with ShadowRebuild.open(log.url, log.schema, projections, cipher_key=log.cipher_key) as rebuild:
                outcome.update(
                    await rebuild_with(
                        rebuild,
                        head=head,
                        to_position=to_position,
                        until=moment,
                        verify=verify,
                        keep=keep,
                        quiet=as_json,
                    )
                )
        except ReplayBusy as busy:
            raise BadInput(str(busy)) from None

    run(work)
    if as_json:
        typer.echo(_encoder.encode(outcome).decode())
    else:
        report(outcome)
    if outcome.get("ok") is False:
        raise typer.Exit(1)


async def rebuild_with(
    rebuild: ShadowRebuild,
    *,
    head: int,
    to_position: int | None,
    until: datetime | None,
    verify: bool,
    keep: bool,
    quiet: bool,
) -> dict[str, Any]:
    as_of = to_position is not None or until is not None
    names = [projection.name for projection in rebuild.projections]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    await rebuild.prepare()
    kept = False
    try:
        with Progress(*columns, console=console, disable=quiet, transient=True) as bar:
            if as_of:
                target = to_position if to_position is not None else head
                task = bar.add_task("rebuilding", total=target)
                position = await rebuild.fill(target, until=until, progress=lambda p: bar.update(task, completed=p))
                await rebuild.index()
                sums = await rebuild.sums(rebuild.shadow)
                kept = keep
                return {
                    "mode": "as_of",
                    "projections": names,
                    "position": position,
                    "events": rebuild.applied,
                    "tables": [vars(s) for s in sums],
                    "kept_schema": rebuild.shadow if keep else None,
                }
            live = await rebuild.settled_positions(await rebuild.live_positions())
            task = bar.add_task("rebuilding", total=max(live.values(), default=0))
            follow = lambda p: bar.update(task, completed=p)  # noqa: E731
            await rebuild.fill(min(live.values(), default=0), progress=follow)
            await rebuild.catch_up_each(await rebuild.settled_positions(await rebuild.live_positions()), follow)
            bar.update(task, description="indexing")
            await rebuild.index()
            bar.update(task, description="holding the live projections")
            async with rebuild.locked(follow) as positions:
                if verify:
                    differences = await rebuild.differences()
                    live_sums = await rebuild.sums(rebuild.schema)
                    shadow_sums = await rebuild.sums(rebuild.shadow)
                    return {
                        "mode": "verify",
                        "ok": not differences,
                        "positions": positions,
                        "events": rebuild.applied,
                        "tables": [
                            {"table": a.table, "live_rows": a.rows, "rebuilt_rows": b.rows, "same": a == b}
                            for a, b in zip(live_sums, shadow_sums, strict=True)
                        ],
                        "differences": [{"table": d.table, "key": d.key, "kind": d.kind} for d in differences],
                    }
                await rebuild.swap()
            sums = await rebuild.sums(rebuild.schema)
            return {
                "mode": "swap",
                "positions": positions,
                "events": rebuild.applied,
                "tables": [vars(s) for s in sums],
            }
    finally:
        if not kept:
            await rebuild.drop()


def report(outcome: dict[str, Any]) -> None:
    sums = [TableSum(t["table"], t["rows"], t["digest"]) for t in outcome["tables"] if "digest" in t]
    if outcome["mode"] == "as_of":
        console.print(sums_table(f"rebuilt as of position {outcome['position']} ({outcome['events']:,} events)", sums))
        if outcome["kept_schema"]:
            console.print(f"the rebuilt tables are in schema {outcome['kept_schema']}; a new rebuild replaces them")
    elif outcome["mode"] == "swap":
        console.print(sums_table(f"rebuilt from {outcome['events']:,} events and swapped in", sums))
        for name, position in outcome["positions"].items():
            console.print(f"{name}: live again at position {position}; its projector goes on from there")
    elif outcome["ok"]:
        console.print(f"every table rebuilt from {outcome['events']:,} events is identical to the live one")
    else:
        differing = outcome["differences"]
        console.print(f"[red]{len(differing)} rows differ between the live tables and the rebuild[/red]")
        for difference in differing[:50]:
            console.print(f"  {difference['table']} {difference['key']}: {difference['kind']}")
        if len(differing) > 50:
            console.print(f"  … and {len(differing) - 50} more (--json lists them all)")
