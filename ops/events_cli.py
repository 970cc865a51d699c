"""`aiwp events`: the store's log as an auditor reads it — one stream, the tail of the log, one position.

Events are decoded (and upcast to their current class) with the store's own mapper. Nothing here writes.
Personal data sealed for a data subject is shown opened, or `[erased]` once the subject was erased (ADR 0008).
"""

from __future__ import annotations

import asyncio
import fnmatch
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from uuid import UUID

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from adapters.event_store.sealing import reveal_value
from adapters.subject_keys import KeyRing, PostgresKeyTable, reveal
from domain.events import DomainEvent
from ops.inspection import Log, NoEventStore, open_log
from ops.settings import Settings
from projections.projection import Recorded

events_app = typer.Typer(help="Read the event store: one stream, the global log, one position.", no_args_is_help=True)
console = Console()
Json = Annotated[bool, typer.Option("--json", help="One JSON object per line, for scripts.")]
BATCH = 500
META = ("originator_id", "originator_version", "timestamp", "metadata")
_encoder = msgspec.json.Encoder(decimal_format="string")


class BadInput(Exception):
    """What the user asked for does not exist or does not parse: exit 2 with one line."""


def as_record(recorded: Recorded, keyring: KeyRing | None = None) -> dict[str, Any]:
    """One event as shown; with a key ring (loaded by `load_keys`), its sealed personal data opened."""
    event = recorded.event
    record = {
        "position": recorded.position,
        "stream_id": str(event.originator_id),
        "version": event.originator_version,
        "time": event.timestamp.isoformat(),
        "type": type(event).__name__,
        "tenant": event.metadata.tenant_id,
        "actor": event.metadata.actor,
        "correlation_id": str(event.metadata.correlation_id),
        "causation_id": str(event.metadata.causation_id),
        "data": {f: msgspec.to_builtins(getattr(event, f)) for f in event.__struct_fields__ if f not in META},
    }
    if event.metadata.subject:
        record["subject"] = event.metadata.subject  # the pseudonymous data subject id (ADR 0008)
    if keyring is not None:
        record["data"] = reveal_value(record["data"], event.metadata.tenant_id, keyring.key)
    return record


async def load_keys(log: Log, events: list[Recorded]) -> KeyRing | None:
    """A key ring holding the keys these events' sealed data needs (None for a store without a key table)."""
    async with log.pool.acquire() as conn:
        if await conn.fetchval("SELECT to_regclass('subject_keys')") is None:
            return None
    keyring = KeyRing(PostgresKeyTable(log.pool), ttl=3600.0)
    for recorded in events:
        data = {f: msgspec.to_builtins(getattr(recorded.event, f)) for f in recorded.event.__struct_fields__}
        await reveal(data, recorded.event.metadata.tenant_id, keyring)
    return keyring


def show(events: list[Recorded], *, as_json: bool, title: str, keyring: KeyRing | None = None) -> None:
    if as_json:
        for recorded in events:
            sys.stdout.write(_encoder.encode(as_record(recorded, keyring)).decode() + "\n")
        sys.stdout.flush()
        return
    table = Table(title=title, title_justify="left")
    for column in ("position", "version", "time", "type", "actor", "data"):
        table.add_column(column, overflow="fold")
    for recorded in events:
        record = as_record(recorded, keyring)
        data = _encoder.encode(record["data"]).decode()
        table.add_row(
            str(record["position"]),
            str(record["version"]),
            record["time"],
            record["type"],
            record["actor"],
            data if len(data) <= 160 else data[:159] + "…",
        )
    console.print(table)


def run(work: Callable[[Log], Awaitable[None]]) -> None:
    """Opens the log, runs the command; bad input or no store exits 2 with one line, Ctrl-C exits 0."""
    from ops.cli import load_settings  # the one way settings are read, with its exit 2

    settings: Settings = load_settings()

    async def go() -> None:
        async with open_log(settings) as log:
            await work(log)

    try:
        asyncio.run(go())
    except (BadInput, NoEventStore) as error:
        typer.echo(f"aiwp: {error}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def stream_id_of(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise BadInput(f"{text!r} is not a stream id (a UUID)") from None


@events_app.command("stream")
def stream(stream_id: Annotated[str, typer.Argument(help="The aggregate's id.")], as_json: Json = False) -> None:
    """The history of one aggregate: position, version, time, type, actor and data of each event.

    Example: aiwp events stream 0b8f6c1e-6a57-4b8e-9d43-2f0f1f5a7c11 --json
    """

    async def work(log: Log) -> None:
        wanted = stream_id_of(stream_id)
        async with log.pool.acquire() as conn:
            events = await log.reader.stream(conn, wanted)
        if not events:
            raise BadInput(f"no stream {wanted} in the event store")
        show(events, as_json=as_json, title=f"stream {wanted}", keyring=await load_keys(log, events))

    run(work)


def matches(pattern: str | None, event: DomainEvent) -> bool:
    return pattern is None or fnmatch.fnmatchcase(type(event).__name__, pattern)


@events_app.command("tail")
def tail(
    start: Annotated[
        int | None,
        typer.Option("--from", min=0, help="Show the events after this position (default: the last --count)."),
    ] = None,
    count: Annotated[int, typer.Option("--count", min=1, max=100_000, help="How many events to show.")] = 20,
    type_glob: Annotated[
        str | None, typer.Option("--type", help="Only event types matching this glob, e.g. 'Step*'.")
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events until Ctrl-C.")] = False,
    as_json: Json = False,
) -> None:
    """The global log, in position order: the last --count events, or those after --from.

    Example: aiwp events tail --from 1200 --type 'AgentRun*' --follow --json
    """

    async def work(log: Log) -> None:
        async with log.pool.acquire() as conn:
            after = start if start is not None else await log.reader.last(conn, count)
            shown = 0
            while True:
                batch = await log.reader.read(conn, after, BATCH)
                chosen = [r for r in batch.events if matches(type_glob, r.event)]
                if not follow:
                    chosen = chosen[: count - shown]
                if chosen:
                    keyring = await load_keys(log, chosen)
                    show(chosen, as_json=as_json, title=f"events after position {after}", keyring=keyring)
                shown += len(chosen)
                after = batch.events[-1].position if batch.events else after
                if not follow and (shown >= count or batch.caught_up(BATCH)):
                    return
                if follow and batch.caught_up(BATCH):
                    await asyncio.sleep(1.0)

    run(work)


@events_app.command("show")
def show_position(
    position: Annotated[int, typer.Argument(help="A position of the global log.")], as_json: Json = False
) -> None:
    """The event at one position of the global log, with all its data and metadata.

    Example: aiwp events show 1234 --json
    """

    async def work(log: Log) -> None:
        async with log.pool.acquire() as conn:
            recorded = await log.reader.at(conn, position) if position > 0 else None
        if recorded is None:
            raise BadInput(f"no event at position {position}")
        keyring = await load_keys(log, [recorded])
        if as_json:
            show([recorded], as_json=True, title="", keyring=keyring)
            return
        record = as_record(recorded, keyring)
        console.print_json(_encoder.encode(record).decode())

    run(work)
