"""`aiwp gdpr`: erase a data subject by dropping its key (crypto-shredding, ADR 0008), list the subjects.

An erase records `DataSubjectErased` on the subject's stream first, then drops the key (the row stays as a
tombstone); run again, it finishes what a failed run left. It opens the event store and the key table only:
no broker, no LLM, nothing outside the database is touched (the relay publishes the event later).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
import msgspec
import typer
from rich.table import Table

from adapters.event_store.store import EventSourcedStore
from adapters.postgres import create_pool
from adapters.subject_keys import KeyRing, PostgresKeyTable
from commands.privacy import EraseDataSubject, erase_data_subject
from domain.aggregate import CommandContext
from domain.personal import SUBJECT
from ops.bootstrap import build_store
from ops.events_cli import BadInput, Json, console
from ops.inspection import NoEventStore, database_of
from ops.settings import Settings

gdpr_app = typer.Typer(
    help="Erase a data subject's personal data (its key is dropped; its sealed data reads \\[erased]).",
    no_args_is_help=True,
)
Tenant = Annotated[str, typer.Option("--tenant", help="The tenant the subject belongs to.")]
ACTOR = "aiwp gdpr erase"
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class Privacy:
    settings: Settings
    pool: asyncpg.Pool
    keyring: KeyRing
    store: Callable[[], EventSourcedStore]


@asynccontextmanager
async def open_privacy(settings: Settings) -> AsyncIterator[Privacy]:
    """The key table and (on demand) the event store of the settings' database."""
    with database_of(settings) as url:
        stores: list[EventSourcedStore] = []

        def store() -> EventSourcedStore:
            if not stores:
                stores.append(build_store(settings, url))
            return stores[0]

        pool = await create_pool(url, settings.database_schema, size=2)
        try:
            async with pool.acquire() as conn:
                if await conn.fetchval("SELECT to_regclass('subject_keys')") is None:
                    raise BadInput(
                        f"no data subject keys in schema {settings.database_schema!r} (run `aiwp migrate` first)"
                    )
            yield Privacy(settings, pool, KeyRing(PostgresKeyTable(pool), ttl=0), store)
        finally:
            for made in stores:
                await made.close()
            await pool.close()


def run(work: Callable[[Privacy], Awaitable[None]]) -> None:
    """Opens the database, runs the command; bad input exits 2 with one line."""
    from ops.cli import load_settings  # the one way settings are read, with its exit 2

    settings: Settings = load_settings()

    async def go() -> None:
        async with open_privacy(settings) as privacy:
            await work(privacy)

    try:
        asyncio.run(go())
    except (BadInput, NoEventStore) as error:
        typer.echo(f"aiwp: {error}", err=True)
        raise typer.Exit(2) from None


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(_encoder.encode(record).decode() + "\n")
    sys.stdout.flush()


@gdpr_app.command("erase")
def erase(
    subject: Annotated[str, typer.Argument(help="The pseudonymous id the tenant named the subject by.")],
    tenant: Tenant = "demo",
    reason: Annotated[str, typer.Option(help="Why (e.g. the request's ticket); recorded with the erasure.")] = "",
    as_json: Json = False,
) -> None:
    """Erase a data subject: record the erasure, then drop its key. Idempotent.

    Every personal field sealed for the subject then reads \\[erased] — in the events, the read models, the
    API and rebuilt projections — and the audit chain still verifies. Running processes drop their cached
    key within AIWP_SUBJECT_KEY_TTL_SECONDS.

    Example: aiwp gdpr erase customer-4711 --tenant acme --reason "ticket 1234" --json
    """

    if not SUBJECT.match(subject):
        typer.echo(
            f"aiwp: {subject!r} is not a data subject id (letters, digits, '.', '_' or '-', at most 64)", err=True
        )
        raise typer.Exit(2)

    async def work(privacy: Privacy) -> None:
        known = {s.subject: s for s in await privacy.keyring.subjects(tenant)}
        if subject not in known:
            raise BadInput(f"no data subject {subject!r} in tenant {tenant!r}")
        correlation = uuid.uuid4()
        ctx = CommandContext(
            at=datetime.now(UTC), tenant_id=tenant, actor=ACTOR, correlation_id=correlation, causation_id=correlation
        )
        recorded = await erase_data_subject(privacy.store(), ctx, EraseDataSubject(subject=subject, reason=reason))
        dropped = await privacy.keyring.erase(tenant, subject)
        vacuumed = await vacuum(privacy.pool)
        record = {
            "tenant": tenant,
            "subject": subject,
            "erased": True,
            "already_erased": not dropped,
            "stream_id": str(recorded.id),
            "position": recorded.position,
            "vacuum_ran": vacuumed,
            "cache_ttl_seconds": privacy.settings.subject_key_ttl_seconds,
        }
        if as_json:
            emit(record)
            return
        state = "was already erased" if not dropped else "is erased"
        console.print(f"data subject [bold]{subject}[/] of tenant [bold]{tenant}[/] {state}")
        console.print(f"erasure recorded on stream {recorded.id} (position {recorded.position})")
        console.print(
            f"running processes stop revealing it within {privacy.settings.subject_key_ttl_seconds:g} s"
            + ("" if vacuumed else "; run VACUUM on subject_keys as its owner to purge the old key row")
        )

    run(work)


async def vacuum(pool: asyncpg.Pool) -> bool:
    """Purges the dead row that still holds the old key (best effort: VACUUM needs the table's owner)."""
    try:
        async with pool.acquire() as conn:
            await conn.execute("VACUUM subject_keys")
    except asyncpg.PostgresError:
        return False
    return True


@gdpr_app.command("subjects")
def subjects(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant.")] = None, as_json: Json = False
) -> None:
    """The data subjects that have (or had) a key: created when, erased when.

    Example: aiwp gdpr subjects --tenant acme --json
    """

    async def work(privacy: Privacy) -> None:
        found = await privacy.keyring.subjects(tenant)
        if as_json:
            for key in found:
                emit(msgspec.to_builtins(key) | {"status": "erased" if key.erased_at else "active"})
            return
        table = Table(title="data subjects", title_justify="left")
        for column in ("tenant", "subject", "status", "created", "erased"):
            table.add_column(column)
        for key in found:
            table.add_row(
                key.tenant_id,
                key.subject,
                "erased" if key.erased_at else "active",
                key.created_at.isoformat(timespec="seconds"),
                key.erased_at.isoformat(timespec="seconds") if key.erased_at else "",
            )
        console.print(table)

    run(work)
