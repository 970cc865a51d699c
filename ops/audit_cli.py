"""`aiwp audit`: what an auditor runs against the audit trail — verify it, sign its head, export it, apply retention.

`verify` only reads. `checkpoint` writes one new signed file (or S3 object); `export` writes the file it is given
and its manifest; `retention apply` drops partitions as the database owner. Nothing else leaves the machine.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import uuid4

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from gateways.checkpoints import CheckpointExists, CheckpointStorageError
from ops.audit_keys import AuditSetupError, checkpoint_storage, signing_key, signing_key_name, verify_keys
from ops.disclosure import Disclosure
from ops.events_cli import BadInput, Json, console, run
from ops.inspection import Log
from ops.settings import Settings
from projections.audit_checkpoints import (
    SCHEMA,
    Checkpoint,
    CheckpointStorage,
    Cut,
    check_checkpoint,
    cut_problem,
    latest_name,
    name_of,
    open_checkpoint,
    origin_of,
    retention_cut,
    rows_up_to,
    store_id,
)
from projections.audit_export import FORMATS, export_rows, manifest, write_export
from projections.audit_retention import Plan, RetentionRefused, apply_retention, plan_retention
from projections.audit_signing import BadSignature, key_id, signed
from projections.audit_verification import Verdict, audit_rows, verify
from projections.projection import Connection

audit_app = typer.Typer(help="Check, sign, export and prune the audit trail.", no_args_is_help=True)
retention_app = typer.Typer(help="Apply the retention policy to the audit trail.", no_args_is_help=True)
audit_app.add_typer(retention_app, name="retention")


def say(text: str) -> None:
    """One message, never wrapped (hashes and paths stay whole)."""
    console.print(text, soft_wrap=True)


def settings_now() -> Settings:
    from ops.cli import load_settings  # the one way settings are read, with its exit 2

    return load_settings()


def run_audit(work: Callable[[Log], Awaitable[None]]) -> None:
    """`run`, with a key, location or storage that cannot be used as bad input (exit 2, one line)."""

    async def guarded(log: Log) -> None:
        try:
            await work(log)
        except (AuditSetupError, CheckpointStorageError) as error:
            raise BadInput(str(error)) from None
        except OSError as error:
            raise BadInput(f"{error.filename or 'a file'}: {error.strerror or error}") from None

    run(guarded)


async def walk(
    conn: Connection, start: int, end: int | None, *, origin: bytes, as_json: bool, label: str = "verifying"
) -> Verdict:
    """The chain from `start` to `end`, with a progress line (call inside a repeatable-read transaction)."""
    first = start == 0 or not await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM audit_events WHERE position < $1)", start
    )
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=console, disable=as_json, transient=True
    ) as bar:
        task = bar.add_task(label, total=None)

        async def counted() -> AsyncIterator[Any]:
            seen = 0
            async for row in audit_rows(conn, start, end):
                seen += 1
                if seen % 10_000 == 0:
                    bar.update(task, description=f"{label}: {seen:,} rows, position {row['position']}")
                yield row

        verdict = await verify(counted(), first=first, origin=origin)
        bar.update(task, description=f"{label}: {verdict.rows:,} rows")
        return verdict


async def latest_checkpoint(
    storage: CheckpointStorage, settings: Settings
) -> tuple[str | None, Checkpoint | None, str]:
    """(name, checkpoint, problem) of the checkpoint with the highest position; problem when it does not verify."""
    name = await asyncio.to_thread(latest_name, storage)
    if name is None:
        return None, None, ""
    keys = await verify_keys(settings, os.environ)
    if not keys:
        raise BadInput(
            f"{storage.where} holds checkpoints but there is no key to check them:"
            " set AIWP_AUDIT_VERIFY_KEY to the checkpoint key's public half"
        )
    data = await asyncio.to_thread(storage.read, name)
    try:
        checkpoint = open_checkpoint(data, keys)
    except BadSignature as error:
        return name, None, f"the latest checkpoint {name} does not verify: {error}"
    if name != name_of(checkpoint.position):  # a valid old checkpoint copied under a higher name hides what came after
        return name, None, f"the latest checkpoint file {name} holds one signed for position {checkpoint.position}"
    return name, checkpoint, ""


async def checkpoint_report(
    conn: Connection, storage: CheckpointStorage, settings: Settings, cut: Cut | None
) -> dict[str, Any]:
    """What the latest checkpoint says about the trail: status none, ok, failed or before_cut."""
    name, checkpoint, problem = await latest_checkpoint(storage, settings)
    report: dict[str, Any] = {"where": storage.where, "name": name}
    if name is None:
        return report | {"status": "none"}
    if checkpoint is None:
        return report | {"status": "failed", "problem": problem}
    report |= {"position": checkpoint.position, "key_id": checkpoint.key_id, "created_at": checkpoint.created_at}
    problem = await cut_problem(conn, cut)
    if problem:
        return report | {"status": "failed", "problem": problem}
    if cut is not None and checkpoint.position <= cut.last_position:
        return report | {"status": "before_cut", "problem": "its position was dropped by retention: sign a new one"}
    problem = await check_checkpoint(conn, checkpoint, cut)
    return report | ({"status": "failed", "problem": problem} if problem else {"status": "ok"})


@audit_app.command("verify")
def audit_verify(
    start: Annotated[int, typer.Option("--from", min=0, help="The first position to check.")] = 0,
    end: Annotated[int | None, typer.Option("--to", min=0, help="The last position to check.")] = None,
    as_json: Json = False,
) -> None:
    """Walk the hash chain and name the first row that does not verify (exit 1); check the latest signed
    checkpoint too (exit 1 when the trail was rewritten or cut before it).

    Example: aiwp audit verify --from 1 --to 250000 --json
    """
    settings = settings_now()
    if end is not None and end < start:
        typer.echo(f"aiwp: --to {end} is before --from {start}", err=True)
        raise typer.Exit(2)
    results: list[tuple[Verdict, dict[str, Any], Cut | None]] = []

    async def work(log: Log) -> None:
        storage = checkpoint_storage(settings)
        async with log.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            cut = await retention_cut(conn)
            verdict = await walk(conn, start, end, origin=origin_of(cut), as_json=as_json)
            results.append((verdict, await checkpoint_report(conn, storage, settings, cut), cut))

    run_audit(work)
    outcome, checkpoint, cut = results[0]
    ok = outcome.ok and checkpoint["status"] != "failed"
    if as_json:
        typer.echo(
            json.dumps(
                {"ok": ok, "rows": outcome.rows, "first_bad": outcome.first_bad, "reason": outcome.reason}
                | ({"head": outcome.head.hex(), "last": outcome.last} if outcome.ok else {})
                | {"checkpoint": checkpoint}
                | {"retention_cut": {"last_position": cut.last_position, "head": cut.head.hex()} if cut else None}
            )
        )
    else:
        if outcome.ok:
            say(f"the chain holds: {outcome.rows:,} rows verified; head {outcome.head.hex()}")
        else:
            say(f"[red]position {outcome.first_bad} does not verify[/red]: {outcome.reason}")
        status = checkpoint["status"]
        if status == "none":
            say(f"no signed checkpoint in {checkpoint['where']}: a rewrite of the whole chain would not show")
        elif status == "ok":
            say(f"checkpoint {checkpoint['name']} (position {checkpoint['position']}) holds")
        elif status == "before_cut":
            say(f"[yellow]checkpoint {checkpoint['name']}[/yellow]: {checkpoint['problem']}")
        else:
            say(f"[red]checkpoint {checkpoint['name']} does not hold[/red]: {checkpoint['problem']}")
    if not ok:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(as_json: Json = False) -> None:
    """Sign the chain head with the Ed25519 key from the secrets gateway and store it outside the database
    (AIWP_AUDIT_CHECKPOINTS: a directory or s3://bucket/prefix). Refuses (exit 1) when the chain does not verify
    from the previous checkpoint.

    Example: AIWP_AUDIT_CHECKPOINTS=s3://audit/prod aiwp audit checkpoint --json
    """
    settings = settings_now()
    results: list[dict[str, Any]] = []

    async def work(log: Log) -> None:
        key = await signing_key(settings, os.environ)
        if key is None:
            raise BadInput(f"no checkpoint signing key: {signing_key_name(settings)} is not set")
        storage = checkpoint_storage(settings)
        previous_name, previous, problem = await latest_checkpoint(storage, settings)
        if problem:
            results.append({"ok": False, "problem": problem + "; refusing to sign"})
            return
        async with log.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            cut = await retention_cut(conn)
            problem = await cut_problem(conn, cut)
            if problem:
                results.append({"ok": False, "problem": problem + "; refusing to sign"})
                return
            start = 0
            if previous is not None and not (cut is not None and previous.position <= cut.last_position):
                problem = await check_checkpoint(conn, previous, cut)
                if problem:
                    results.append({"ok": False, "problem": f"{previous_name}: {problem}; refusing to sign"})
                    return
                start = previous.position
            verdict = await walk(conn, start, None, origin=origin_of(cut), as_json=as_json)
            if not verdict.ok:
                results.append(
                    {
                        "ok": False,
                        "first_bad": verdict.first_bad,
                        "problem": f"position {verdict.first_bad} does not verify: {verdict.reason}; refusing to sign",
                    }
                )
                return
            if verdict.last is None:
                raise BadInput("the audit trail is empty: there is no head to sign")
            document = {
                "schema": SCHEMA,
                "store": await store_id(conn),
                "position": verdict.last,
                "rows": await rows_up_to(conn, verdict.last, cut),
                "head": verdict.head.hex(),
                "created_at": datetime.now(UTC).isoformat(),
            }
        name = name_of(verdict.last)
        report = {"ok": True, "where": storage.where, "name": name, "previous": previous_name} | document
        try:
            await asyncio.to_thread(storage.create, name, signed(document, key))
        except CheckpointExists:
            results.append(report | {"written": False})
            return
        results.append(report | {"written": True, "key_id": key_id(key.public_key())})

    run_audit(work)
    result = results[0]
    if as_json:
        typer.echo(json.dumps(result))
    elif not result["ok"]:
        say(f"[red]not signed[/red]: {result['problem']}")
    elif result["written"]:
        say(
            f"signed position {result['position']} ({result['rows']:,} rows, head {result['head']})"
            f" into {result['where']}{'' if result['where'].endswith('/') else '/'}{result['name']}"
        )
    else:
        say(f"{result['name']} already signs the head (position {result['position']}); nothing written")
    if not result["ok"]:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    *,
    start: Annotated[int, typer.Option("--from", min=0, help="The first position to export.")],
    end: Annotated[int, typer.Option("--to", min=0, help="The last position to export.")],
    out: Annotated[Path, typer.Option("--out", help="The file to write (must not exist); FILE.manifest.json beside.")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's rows.")] = None,
    as_json: Json = False,
) -> None:
    """A compliance export of the rows in a position range, with a manifest (row count, first/last position,
    chain head, SHA-256 of the file), signed when the checkpoint key is available.

    Example: aiwp audit export --from 1 --to 250000 --tenant acme --format csv --out acme-2026-q3.csv
    """
    settings = settings_now()
    manifest_path = out.with_name(out.name + ".manifest.json")
    problem = (
        f"--format {fmt!r} is not one of {', '.join(FORMATS)}"
        if fmt not in FORMATS
        else f"--to {end} is before --from {start}"
        if end < start
        else f"{out.parent} is not a directory"
        if not out.parent.is_dir()
        else f"{out} exists; exports never overwrite: choose another --out"
        if out.exists()
        else f"{manifest_path} exists; choose another --out"
        if manifest_path.exists()
        else ""
    )
    if problem:
        typer.echo(f"aiwp: {problem}", err=True)
        raise typer.Exit(2)
    results: list[dict[str, Any]] = []

    async def work(log: Log) -> None:
        key = await signing_key(settings, os.environ)
        async with log.pool.acquire() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                store = await store_id(conn)
                with Progress(
                    SpinnerColumn(), TextColumn("{task.description}"), console=console, disable=as_json, transient=True
                ) as bar:
                    task = bar.add_task("exporting", total=None)
                    exported = await write_export(
                        export_rows(conn, start, end, tenant),
                        out,
                        fmt,
                        Disclosure(log).disclose,
                        lambda n: bar.update(task, description=f"exporting: {n:,} rows"),
                    )
            document = manifest(
                exported,
                out=out,
                fmt=fmt,
                start=start,
                end=end,
                tenant=tenant,
                store=store,
                created_at=datetime.now(UTC).isoformat(),
            )
            manifest_path.write_bytes(signed(document, key))
            recorded = bool(await conn.fetchval("SELECT has_table_privilege('compliance_reports', 'INSERT')"))
            if recorded:
                await conn.execute(
                    "INSERT INTO compliance_reports (report_id, tenant_id, framework, from_position, to_position,"
                    " row_count, chain_head, location) VALUES ($1, $2, 'export', $3, $4, $5, $6, $7)",
                    uuid4(),
                    tenant,
                    start,
                    end,
                    exported.rows,
                    exported.head or b"",
                    str(out.resolve()),
                )
        results.append(
            document
            | {"out": str(out), "manifest": str(manifest_path), "signed": key is not None, "recorded": recorded}
        )

    run_audit(work)
    result = results[0]
    if as_json:
        typer.echo(json.dumps(result))
    else:
        say(
            f"exported {result['rows']:,} rows (positions {result['first_position']}..{result['last_position']})"
            f" to {result['out']}; manifest {result['manifest']}"
            f" ({'signed' if result['signed'] else 'unsigned: no checkpoint key'});"
            f" {'recorded in' if result['recorded'] else 'not recorded in (no INSERT grant)'} compliance_reports"
        )


def plan_json(plan: Plan, *, dry_run: bool) -> dict[str, Any]:
    last = plan.last_dropped
    return {
        "dry_run": dry_run,
        "kind": plan.kind,
        "policies": plan.policies,
        "dropped": [
            {
                "partition": p.name,
                "from": p.start.isoformat(),
                "to": p.end.isoformat(),
                "rows": p.rows,
                "first_position": p.first_position,
                "last_position": p.last_position,
                "last_hash": p.last_hash.hex() if p.last_hash is not None else None,
            }
            for p in plan.dropped
        ],
        "kept": [{"partition": d.piece.name, "reason": d.reason} for d in plan.decisions if not d.drop],
        "cut": None
        if last is None or last.last_hash is None
        else {"last_position": last.last_position, "head": last.last_hash.hex(), "first_kept": plan.first_kept},
    }


@retention_app.command("apply")
def audit_retention_apply(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be dropped.")] = False,
    as_json: Json = False,
) -> None:
    """Drop the monthly partitions (TimescaleDB: chunks) past every tenant's retention policy, oldest first, and
    record each with the chain head at the cut. Run as the database owner; verifies the chain first (exit 1
    when it does not hold, and nothing is dropped).

    Example: aiwp audit retention apply --dry-run --json
    """
    results: list[dict[str, Any]] = []

    async def work(log: Log) -> None:
        async with log.pool.acquire() as conn:
            if not dry_run:
                if await conn.fetchval("SELECT to_regclass('audit_retention_log')") is None:
                    raise BadInput("there is no audit_retention_log table: run `aiwp migrate` first")
                owner = await conn.fetchval(
                    "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class"
                    " WHERE oid = 'audit_events'::regclass"
                )
                if not owner:
                    raise BadInput("retention apply drops partitions: run it as the owner of audit_events")
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    cut = await retention_cut(conn)
                    verdict = await walk(conn, 0, None, origin=origin_of(cut), as_json=as_json)
                if not verdict.ok:
                    results.append(
                        {
                            "ok": False,
                            "problem": f"position {verdict.first_bad} does not verify: {verdict.reason};"
                            " nothing was dropped",
                        }
                    )
                    return
            if dry_run:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    results.append({"ok": True} | plan_json(await plan_retention(conn), dry_run=True))
                return
            try:
                async with conn.transaction():
                    await conn.execute("LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE")
                    plan = await plan_retention(conn)
                    await apply_retention(conn, plan)
            except RetentionRefused as error:
                results.append({"ok": False, "problem": f"{error}; nothing was dropped"})
                return
            results.append({"ok": True} | plan_json(plan, dry_run=False))

    run_audit(work)
    result = results[0]
    if as_json:
        typer.echo(json.dumps(result))
    elif not result["ok"]:
        say(f"[red]retention not applied[/red]: {result['problem']}")
    else:
        verb = "would drop" if result["dry_run"] else "dropped"
        if not result["dropped"]:
            say(f"nothing to drop ({result['kind']}; policies {result['policies'] or 'none'})")
        for p in result["dropped"]:
            say(
                f"{verb} {p['partition']} ({p['from'][:7]}): {p['rows']:,} rows,"
                f" positions {p['first_position']}..{p['last_position']}"
            )
        for k in result["kept"]:
            say(f"[dim]kept {k['partition']}: {k['reason']}[/dim]")
        if result["cut"]:
            say(
                f"chain head at the cut: {result['cut']['head']} (position {result['cut']['last_position']});"
                f" first kept: {result['cut']['first_kept']}"
            )
    if not result["ok"]:
        raise typer.Exit(1)
