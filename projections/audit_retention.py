"""Retention of the audit trail: which monthly partitions (or TimescaleDB chunks) are past every tenant's policy,
dropping them, and recording the chain head at the cut (docs/adr/0009-audit-checkpoints-and-retention.md).

A partition holds every tenant's rows of one month. It is dropped only when the policy of each tenant with rows
in it allows it (`retention_policies.keep_months`, or the `'*'` row for tenants without one; no policy at all
keeps everything), and only as part of the oldest run of partitions, so that what stays is the chain's tail.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from projections.projection import Connection

ANY_TENANT = "*"
PARTITION = re.compile(r"^audit_events_(\d{4})_(\d{2})$")


class RetentionRefused(Exception):
    """Dropping would leave a trail that does not link up; nothing was dropped."""


@dataclass(frozen=True)
class Piece:
    """One partition or chunk of the trail."""

    name: str
    schema: str
    start: datetime
    end: datetime
    rows: int = 0
    first_position: int | None = None
    last_position: int | None = None
    last_hash: bytes | None = None
    tenants: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    piece: Piece
    drop: bool
    reason: str


@dataclass(frozen=True)
class Plan:
    kind: str  # "partitions" or "timescaledb"
    policies: dict[str, int]
    decisions: list[Decision] = field(default_factory=list)

    @property
    def dropped(self) -> list[Piece]:
        return [d.piece for d in self.decisions if d.drop]

    @property
    def last_dropped(self) -> Piece | None:
        """The dropped piece that holds the chain's last dropped row."""
        holding = [p for p in self.dropped if p.last_position is not None]
        return max(holding, key=lambda p: p.last_position or 0) if holding else None

    @property
    def first_kept(self) -> int | None:
        kept = [d.piece.first_position for d in self.decisions if not d.drop and d.piece.first_position is not None]
        return min(kept) if kept else None


def months_before(moment: datetime, months: int) -> datetime:
    """The first instant of the month `months` before `moment`'s month (UTC)."""
    index = moment.astimezone(UTC).year * 12 + moment.astimezone(UTC).month - 1 - months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def decide(pieces: list[Piece], policies: dict[str, int], now: datetime, kind: str = "partitions") -> Plan:
    """Which pieces may go: the oldest run of pieces whose every tenant's policy has expired, and whose rows all
    come before (by position) every row kept. A piece is past `keep_months` when it ends before the first day of
    the month `keep_months` months before this one."""
    decisions: list[Decision] = []
    kept_one = False
    for piece in sorted(pieces, key=lambda p: p.start):
        if kept_one:
            decisions.append(Decision(piece, False, "an older partition is kept"))
            continue
        reason = _keep_reason(piece, policies, now)
        kept_one = bool(reason)
        decisions.append(Decision(piece, not reason, reason or "past the retention of every tenant in it"))
    # Partitions split the trail by time, the chain runs by position: the two disagree only near a month's edge,
    # when an event's time and its position cross. Never drop a row that comes after a kept one.
    while True:
        kept = [d.piece.first_position for d in decisions if not d.drop and d.piece.first_position is not None]
        first_kept = min(kept) if kept else None
        crossing = next(
            (
                i
                for i, d in enumerate(decisions)
                if d.drop and first_kept is not None and (d.piece.last_position or -1) > first_kept
            ),
            None,
        )
        if crossing is None:
            return Plan(kind, policies, decisions)
        decisions = decisions[:crossing] + [
            replace(d, drop=False, reason="its rows come after (by position) rows of a newer partition that is kept")
            if d.drop
            else d
            for d in decisions[crossing:]
        ]


def _keep_reason(piece: Piece, policies: dict[str, int], now: datetime) -> str:
    if not policies:
        return "no retention policy"
    if piece.tenants:
        months = []
        for tenant in piece.tenants:
            keep = policies.get(tenant, policies.get(ANY_TENANT))
            if keep is None:
                return f"tenant {tenant!r} has rows in it and no retention policy (nor a '*' one)"
            months.append(keep)
        keep_months = max(months)
    else:
        keep_months = max(policies.values())
    if piece.end > months_before(now, keep_months):
        return f"within the {keep_months} months kept"
    return ""


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def pieces_of(conn: Connection) -> tuple[str, list[Piece]]:
    """The trail's partitions (native) or chunks (TimescaleDB), with what each holds."""
    timescale = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
    found: list[Piece] = []
    if timescale:  # untested here: TimescaleDB cannot be installed on the test machine
        for row in await conn.fetch(
            "SELECT chunk_schema, chunk_name, range_start, range_end FROM timescaledb_information.chunks"
            " WHERE hypertable_schema = current_schema() AND hypertable_name = 'audit_events' ORDER BY range_start"
        ):
            found.append(Piece(row["chunk_name"], row["chunk_schema"], row["range_start"], row["range_end"]))
    else:
        for row in await conn.fetch(
            "SELECT n.nspname, c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.inhparent = 'audit_events'::regclass"
        ):
            match = PARTITION.match(row["relname"])
            if match is None:
                continue  # not one that audit_ensure_partition made: leave it alone
            start = datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC)
            found.append(Piece(row["relname"], row["nspname"], start, months_before(start, -1)))
    return ("timescaledb" if timescale else "partitions"), [await _filled(conn, p) for p in found]


async def _filled(conn: Connection, piece: Piece) -> Piece:
    table = f"{quoted(piece.schema)}.{quoted(piece.name)}"
    stats = await conn.fetchrow(
        f"SELECT count(*) AS n, min(position) AS first, max(position) AS last,"  # noqa: S608 - names from pg_class
        f" array_agg(DISTINCT tenant_id) AS tenants FROM {table}"
    )
    if stats is None or not stats["n"]:
        return piece
    last_hash = await conn.fetchval(f"SELECT hash FROM {table} WHERE position = $1", stats["last"])  # noqa: S608
    return replace(
        piece,
        rows=stats["n"],
        first_position=stats["first"],
        last_position=stats["last"],
        last_hash=bytes(last_hash),
        tenants=tuple(sorted(stats["tenants"])),
    )


async def plan_retention(conn: Connection) -> Plan:
    policies = {r["tenant_id"]: r["keep_months"] for r in await conn.fetch("SELECT * FROM retention_policies")}
    now = await conn.fetchval("SELECT now()")
    kind, pieces = await pieces_of(conn)
    return decide(pieces, policies, now, kind)


async def apply_retention(conn: Connection, plan: Plan) -> None:
    """Drops the plan's pieces and logs each with the cut (call as the owner, inside a transaction)."""
    last = plan.last_dropped
    first_kept = plan.first_kept
    if last is not None and first_kept is not None:
        link = await conn.fetchval("SELECT prev_hash FROM audit_events WHERE position = $1", first_kept)
        if link is None or bytes(link) != last.last_hash:
            raise RetentionRefused(
                f"the first row kept (position {first_kept}) does not link to the last row dropped"
                f" (position {last.last_position}); run `aiwp audit verify`"
            )
    if plan.kind == "timescaledb" and plan.dropped:  # untested here
        await conn.execute("SELECT drop_chunks('audit_events', older_than => $1::timestamptz)", plan.dropped[-1].end)
    for piece in plan.dropped:
        if plan.kind == "partitions":
            await conn.execute(f"DROP TABLE {quoted(piece.schema)}.{quoted(piece.name)}")
        await conn.execute(
            "INSERT INTO audit_retention_log (partition_name, range_start, range_end, rows_dropped,"
            " first_position, last_position, last_hash, first_kept_position, policy)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)",
            piece.name,
            piece.start,
            piece.end,
            piece.rows,
            piece.first_position,
            piece.last_position,
            piece.last_hash,
            first_kept,
            json.dumps(plan.policies, sort_keys=True),
        )
