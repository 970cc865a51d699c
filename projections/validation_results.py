"""The `validation_results` read model: each validation's verdict, score, feedback and per-rule results,
and what its `llm_judge` calls cost."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain.validation.validation import JudgeCallFailed, JudgeConsulted, ValidationCompleted, ValidationRequested
from projections.projection import Connection, Projection, Write, as_dicts


def requested(position: int, e: ValidationRequested) -> list[Write]:
    return [
        Write(
            "INSERT INTO validation_results (validation_id, tenant_id, ruleset_id, ruleset_version, subject_type,"
            " subject_id, correlation_id, status, requested_at, version, position)"
            " VALUES ($1, $2, $3, $4, $5, $6, $10, 'requested', $7, $8, $9) ON CONFLICT (validation_id) DO NOTHING",
            (
                e.originator_id,
                e.metadata.tenant_id,
                e.ruleset_id,
                e.ruleset_version,
                e.subject_type,
                e.subject_id,
                e.timestamp,
                e.originator_version,
                position,
                e.metadata.correlation_id,
            ),
        )
    ]


def completed(position: int, e: ValidationCompleted) -> list[Write]:
    return [
        Write(
            "UPDATE validation_results SET status = 'completed', score = $2, passed = $3, feedback = $4,"
            " results = $5, completed_at = $6, version = $7, position = $8 WHERE validation_id = $1",
            (
                e.originator_id,
                e.score,
                e.passed,
                e.feedback,
                e.results,
                e.timestamp,
                e.originator_version,
                position,
            ),
        )
    ]


def judge_consulted(position: int, e: JudgeConsulted) -> list[Write]:
    return [
        Write(
            "UPDATE validation_results SET judge_calls = judge_calls + 1, judge_cost = judge_cost + $2,"
            " version = $3, position = $4 WHERE validation_id = $1",
            (e.originator_id, e.cost, e.originator_version, position),
        )
    ]


def judge_call_failed(position: int, e: JudgeCallFailed) -> list[Write]:
    # Nothing to show until the verdict; the row's version follows the stream's.
    return [
        Write(
            "UPDATE validation_results SET version = $2, position = $3 WHERE validation_id = $1",
            (e.originator_id, e.originator_version, position),
        )
    ]


projection = Projection(
    name="validation_results",
    context="validation",
    tables=("validation_results",),
    handlers={
        ValidationRequested: requested,
        JudgeConsulted: judge_consulted,
        JudgeCallFailed: judge_call_failed,
        ValidationCompleted: completed,
    },
)


async def get_validation(conn: Connection, tenant_id: str, validation_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT * FROM validation_results WHERE tenant_id = $1 AND validation_id = $2", tenant_id, validation_id
    )
    return dict(row) if row else None


async def list_validations(
    conn: Connection,
    tenant_id: str,
    *,
    passed: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: tuple[datetime, UUID] | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM validation_results WHERE tenant_id = $1 AND ($2::boolean IS NULL OR passed = $2)"
        " AND ($3::timestamptz IS NULL OR requested_at >= $3) AND ($4::timestamptz IS NULL OR requested_at < $4)"
        " AND ($5::timestamptz IS NULL OR (requested_at, validation_id) > ($5, $6))"
        " ORDER BY requested_at, validation_id LIMIT $7",
        tenant_id,
        passed,
        since,
        until,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return as_dicts(rows)


async def list_validations_of(conn: Connection, tenant_id: str, correlation_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM validation_results WHERE tenant_id = $1 AND correlation_id = $2"
        " ORDER BY requested_at, validation_id",
        tenant_id,
        correlation_id,
    )
    return as_dicts(rows)


async def recent_failing_validations(conn: Connection, tenant_id: str, *, limit: int = 10) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM validation_results WHERE tenant_id = $1 AND passed = false"
        " ORDER BY requested_at DESC, validation_id DESC LIMIT $2",
        tenant_id,
        limit,
    )
    return as_dicts(rows)


async def find_validations_of_subject(conn: Connection, tenant_id: str, subject_id: str) -> list[UUID]:
    """The validations of one subject (say, an agent run's id), oldest first."""
    rows = await conn.fetch(
        "SELECT validation_id FROM validation_results WHERE tenant_id = $1 AND subject_id = $2"
        " ORDER BY requested_at, validation_id",
        tenant_id,
        subject_id,
    )
    return [row["validation_id"] for row in rows]
