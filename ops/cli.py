"""The `aiwp` command line."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from adapters.projector import ProjectionStatus
from ops.bootstrap import Platform, open_platform, running_workers
from ops.settings import Settings, SettingsError
from projections.catalog import PROJECTIONS

app = typer.Typer(
    name="aiwp",
    help="aiwp — an event-sourced AI workflow platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()


def load_settings() -> Settings:
    """The settings from the environment, or exit 2 with the one line that says what is wrong."""
    try:
        return Settings.from_env(os.environ)
    except SettingsError as error:
        typer.echo(f"aiwp: {error}", err=True)
        raise typer.Exit(2) from None


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at debug level.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr)


@app.command()
def demo() -> None:
    """Run one support-triage workflow on the embedded platform and print every event it wrote.

    Example: aiwp demo
    """
    settings = load_settings()
    from ops.demo import print_read_models, run_demo

    async def go() -> None:
        async with open_platform(settings) as platform, running_workers(platform):
            where = redact(platform.database_url) if settings.database_url else f"embedded in {settings.data_dir}"
            bus = "RabbitMQ" if settings.amqp_url else "in-process bus"
            console.print(f"[dim]event store: PostgreSQL {where}; {bus}[/dim]")
            instance_id, position = await run_demo(platform, console)
            if not await platform.wait_for(position, timeout=30):
                raise RuntimeError(f"the projections did not reach position {position} within 30 s")
            await print_read_models(platform, console, instance_id)

    asyncio.run(go())


worker = typer.Typer(help="Long-running workers: the relay and the projectors.", no_args_is_help=True)
projections_app = typer.Typer(help="Inspect and steer the projections.", no_args_is_help=True)
app.add_typer(worker, name="worker")
app.add_typer(projections_app, name="projections")


def run_until_signalled(work: Callable[[Platform, asyncio.Event], Awaitable[None]]) -> None:
    """Opens the platform and runs `work` until SIGINT or SIGTERM."""
    settings = load_settings()

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with open_platform(settings) as platform:
            await work(platform, stop)

    asyncio.run(go())


@app.command()
def serve() -> None:
    """Run the platform in one process: the relay and every projector (embedded defaults apply).

    Example: aiwp serve
    """

    async def work(platform: Platform, stop: asyncio.Event) -> None:
        async with running_workers(platform):
            bus = "RabbitMQ" if platform.settings.amqp_url else "the in-process bus"
            console.print(f"aiwp serving: relay and {len(platform.projectors)} projectors on {bus}; Ctrl-C stops")
            await stop.wait()

    run_until_signalled(work)


@app.command()
def migrate() -> None:
    """Apply the database migrations that are missing (start-up does it too).

    Example: AIWP_DATABASE_URL=postgresql://aiwp@db/aiwp aiwp migrate
    """
    settings = load_settings()

    async def go() -> None:
        async with open_platform(settings):
            pass

    asyncio.run(go())
    console.print("migrations applied")


@worker.command("relay")
def worker_relay() -> None:
    """Publish the event store's log to the bus, in order, at least once (one active relay per database).

    Example: AIWP_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ aiwp worker relay
    """

    async def work(platform: Platform, stop: asyncio.Event) -> None:
        await platform.relay().run_forever(stop)

    run_until_signalled(work)


@worker.command("projector")
def worker_projector(
    names: Annotated[list[str] | None, typer.Argument(help="Projections to run; none: all of them.")] = None,
) -> None:
    """Run projectors: catch up from the store, then apply what the bus delivers.

    Example: aiwp worker projector executions token_usage
    """
    chosen = check_projection_names(names or list(PROJECTIONS))

    async def work(platform: Platform, stop: asyncio.Event) -> None:
        async with running_workers(platform, relay=False, projections=chosen):
            await stop.wait()

    run_until_signalled(work)


@projections_app.command("status")
def projections_status(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """Show each projection's position, the store's head, and whether it is running or stalled.

    Example: aiwp projections status --json
    """
    settings = load_settings()

    async def go() -> tuple[int, list[ProjectionStatus]]:
        async with open_platform(settings) as platform:
            async with platform.pool.acquire() as conn:
                head = await platform.reader.head(conn)
            return head, [await p.status() for p in platform.projectors.values()]

    head, statuses = asyncio.run(go())
    if as_json:
        typer.echo(msgspec.json.encode({"head": head, "projections": [s.__dict__ for s in statuses]}).decode())
    else:
        table = Table(title=f"projections (store head {head})", title_justify="left")
        for column in ("name", "position", "to apply", "status", "error"):
            table.add_column(column, overflow="fold")
        for s in statuses:
            table.add_row(s.name, str(s.position), str(s.pending), s.status, s.error)
        console.print(table)
    if any(s.status == "stalled" for s in statuses):
        raise typer.Exit(1)


@projections_app.command("resume")
def projections_resume(name: str) -> None:
    """Clear a stalled projection after fixing its cause; it retries the event that stalled it.

    Example: aiwp projections resume executions
    """
    check_projection_names([name])
    settings = load_settings()

    async def go() -> None:
        async with open_platform(settings) as platform:
            await platform.projectors[name].resume()

    asyncio.run(go())
    console.print(f"{name} resumed")


def check_projection_names(names: list[str]) -> list[str]:
    unknown = [name for name in names if name not in PROJECTIONS]
    if unknown:
        typer.echo(f"aiwp: unknown projection {unknown[0]!r}; known: {', '.join(PROJECTIONS)}", err=True)
        raise typer.Exit(2)
    return names


def redact(url: str) -> str:
    """A database URL without its password, for printing."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    host = params.get("host", "")
    return f"postgresql://{params.get('user', '')}@{host}:{params.get('port', '5432')}/{params.get('dbname', '')}"
