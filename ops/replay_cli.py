"""`aiwp replay`: the past rebuilt from the store. Nothing here writes.

`replay aggregate ID --at POS|TIME` folds one stream's events up to a position of the global log or a time —
the aggregate as it stood then, by the same code that folds it for every command.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
import typer

from domain.catalog import aggregate_of
from ops.events_cli import BadInput, Json, console, run, stream_id_of
from ops.inspection import Log

replay_app = typer.Typer(help="Rebuild the past from the event store.", no_args_is_help=True)
_encoder = msgspec.json.Encoder(decimal_format="string")


def moment_of(text: str) -> int | datetime:
    """A position of the log (a whole number) or an ISO 8601 time (UTC when it names no zone)."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"--at {text!r} is neither a position nor an ISO 8601 time") from None
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
        document = {"aggregate": kind.__name__, "as_of": at, "state": msgspec.to_builtins(state)}
        text = _encoder.encode(document).decode()
        if as_json:
            typer.echo(text)
        else:
            console.print(f"[bold]{kind.__name__}[/bold] {wanted} at version {state.version}, as of {at}")
            console.print_json(text)

    run(work)
