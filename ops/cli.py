"""The `aiwp` command line."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import typer
from rich.console import Console

from ops.bootstrap import open_platform
from ops.settings import Settings, SettingsError

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
    from ops.demo import run_demo

    async def go() -> None:
        async with open_platform(settings) as platform:
            where = redact(platform.database_url) if settings.database_url else f"embedded in {settings.data_dir}"
            console.print(f"[dim]event store: PostgreSQL {where}[/dim]")
            await run_demo(platform, console)

    asyncio.run(go())


def redact(url: str) -> str:
    """A database URL without its password, for printing."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    host = params.get("host", "")
    return f"postgresql://{params.get('user', '')}@{host}:{params.get('port', '5432')}/{params.get('dbname', '')}"
