"""The `aiwp` command line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Annotated

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from adapters.projector import ProjectionStatus
from domain.access.roles import ROLES
from ops.audit_cli import audit_app
from ops.bootstrap import Platform, open_platform, running_workers
from ops.events_cli import events_app
from ops.gdpr_cli import gdpr_app
from ops.replay_cli import replay_app
from ops.settings import Settings, SettingsError
from ops.trace_cli import trace
from ops.whatif_cli import whatif
from projections.catalog import PROJECTIONS

if TYPE_CHECKING:
    from ops.http import Part

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
    """Run examples/support-triage.yaml on the embedded platform, live: steps, retries, approval, outputs, cost.

    Example: aiwp demo
    """
    settings = load_settings()
    from ops.demo import REPLIES_FILE, agent_provider, print_read_models, run_demo

    chosen = (
        settings if settings.scripted_replies else msgspec.structs.replace(settings, scripted_replies=str(REPLIES_FILE))
    )

    async def go() -> None:
        async with (
            open_platform(chosen, os.environ) as platform,
            running_workers(platform, agents=True, validation=True, orchestrator=True),
        ):
            where = redact(platform.database_url) if settings.database_url else f"embedded in {settings.data_dir}"
            bus = "RabbitMQ" if settings.amqp_url else "in-process bus"
            provider = "/".join(agent_provider(os.environ))
            console.print(f"[dim]event store: PostgreSQL {where}; {bus}; agents on {provider}[/dim]")
            instance_id, position = await run_demo(platform, console, os.environ)
            if not await platform.wait_for(position, timeout=30):
                raise RuntimeError(f"the projections did not reach position {position} within 30 s")
            await print_read_models(platform, console, instance_id)

    asyncio.run(go())


worker = typer.Typer(
    help="Long-running workers: the relay, the projectors, the orchestrator, the agent and validation workers.",
    no_args_is_help=True,
)
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
        async with open_platform(settings, os.environ) as platform:
            await work(platform, stop)

    asyncio.run(go())


Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")]


def run_http(parts: Sequence[Part], host: str, port: int, *, workers: bool) -> None:
    """Serves the chosen APIs (and, with `workers`, the relay and projectors) until SIGINT or SIGTERM."""
    # Imported here: the web stack costs every other command a fraction of a second to import.
    import uvicorn

    from ops.http import ConfigurationError, build_app, build_edge, check_binding

    class Server(uvicorn.Server):
        """uvicorn, minus its signal capture: we stop it ourselves, so that the platform shuts down in order."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    settings = load_settings()
    try:
        check_binding(settings, host)
    except ConfigurationError as error:
        typer.echo(f"aiwp: {error}", err=True)
        raise typer.Exit(2) from None

    async def go() -> None:
        async with open_platform(settings, os.environ) as platform:
            edge = await build_edge(settings)
            try:
                server = Server(
                    uvicorn.Config(build_app(platform, edge, parts), host=host, port=port, log_level="warning")
                )
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
                if workers:
                    async with running_workers(platform, agents=True, validation=True, orchestrator=True):
                        announce(platform, parts, host, port, workers=True)
                        await server.serve()
                else:
                    announce(platform, parts, host, port, workers=False)
                    await server.serve()
            finally:
                await edge.close()

    asyncio.run(go())


def announce(platform: Platform, parts: Sequence[Part], host: str, port: int, *, workers: bool) -> None:
    what = ", ".join(f"{part} API" for part in parts)
    if workers:
        bus = "RabbitMQ" if platform.settings.amqp_url else "the in-process bus"
        what += f", the relay and {len(platform.projectors)} projectors on {bus}"
    console.print(f"aiwp serving {what} at http://{host}:{port} (OpenAPI at /schema); Ctrl-C stops", soft_wrap=True)


@app.command()
def serve(host: Host = "127.0.0.1", port: Port = 8080) -> None:
    """Run the whole platform in one process: the three APIs, the relay, every projector and the workers.

    Example: aiwp serve --port 8080
    """
    from ops.http import ALL_PARTS

    run_http(ALL_PARTS, host, port, workers=True)


api = typer.Typer(help="Run one API on its own.", no_args_is_help=True)
app.add_typer(api, name="api")
app.add_typer(events_app, name="events")
app.add_typer(replay_app, name="replay")
app.add_typer(audit_app, name="audit")
app.add_typer(gdpr_app, name="gdpr")
app.command("trace")(trace)
app.command("whatif")(whatif)


@api.command("command")
def api_command(host: Host = "127.0.0.1", port: Port = 8080) -> None:
    """The command API (writes). Example: aiwp api command --port 8080"""
    run_http(["command"], host, port, workers=False)


@api.command("query")
def api_query(host: Host = "127.0.0.1", port: Port = 8081) -> None:
    """The query API (reads). Example: aiwp api query --port 8081"""
    run_http(["query"], host, port, workers=False)


@api.command("bff")
def api_bff(host: Host = "127.0.0.1", port: Port = 8082) -> None:
    """The BFF (dashboard and composed views). Example: aiwp api bff --port 8082"""
    run_http(["bff"], host, port, workers=False)


token = typer.Typer(help="Tokens of the embedded local issuer.", no_args_is_help=True)
app.add_typer(token, name="token")


@token.command("issue")
def token_issue(
    role: Annotated[list[str], typer.Option("--role", help="A role: admin, operator, viewer, auditor (repeatable).")],
    tenant: Annotated[str, typer.Option(help="The tenant the token acts for.")] = "demo",
    subject: Annotated[str, typer.Option(help="Who the token is for.")] = "local-user",
    ttl: Annotated[int, typer.Option(min=60, max=86_400 * 30, help="Lifetime in seconds.")] = 3600,
) -> None:
    """Print a token signed by the local issuer (embedded mode, no AIWP_OIDC_ISSUER).

    Example: aiwp token issue --role admin --tenant demo
    """
    settings = load_settings()
    if settings.oidc_issuer:
        typer.echo("aiwp: an OIDC issuer is configured; get tokens from it, not from the local issuer", err=True)
        raise typer.Exit(2)
    unknown = [r for r in role if r not in ROLES]
    if unknown:
        typer.echo(f"aiwp: unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}", err=True)
        raise typer.Exit(2)
    from ops.http import local_issuer

    issued = local_issuer(settings).issue(
        subject=subject, tenant=tenant, roles=role, audience=settings.oidc_audience, ttl=ttl
    )
    typer.echo(issued)


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


@worker.command("agents")
def worker_agents() -> None:
    """Execute agent runs from `agent.commands` (competing consumers; retries through delay queues).

    Example: OPENAI_API_KEY=... AIWP_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ aiwp worker agents
    """

    async def work(platform: Platform, stop: asyncio.Event) -> None:
        async with running_workers(platform, relay=False, projections=[], agents=True):
            await stop.wait()

    run_until_signalled(work)


@worker.command("validation")
def worker_validation() -> None:
    """Evaluate requested validations from `validation.commands`, `llm_judge` rules included (competing consumers).

    Example: OPENAI_API_KEY=... AIWP_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ aiwp worker validation
    """

    async def work(platform: Platform, stop: asyncio.Event) -> None:
        async with running_workers(platform, relay=False, projections=[], validation=True):
            await stop.wait()

    run_until_signalled(work)


@worker.command("orchestrator")
def worker_orchestrator() -> None:
    """Move workflow instances forward: start ready steps, hand out runs and validations, fire timers, unwind sagas.

    Example: AIWP_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ aiwp worker orchestrator
    """

    async def work(platform: Platform, stop: asyncio.Event) -> None:
        async with running_workers(platform, relay=False, projections=[], orchestrator=True):
            await stop.wait()

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
        async with open_platform(settings, os.environ) as platform:
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
        async with open_platform(settings, os.environ) as platform:
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
