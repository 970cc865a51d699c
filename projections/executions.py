"""The `executions` read model: one row per agent run, with its status, attempts, usage and cost."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain.agents.agent_run import (
    AgentRunCancelled,
    AgentRunFailed,
    AgentRunRefused,
    AgentRunRequested,
    AgentRunSucceeded,
    AttemptFailed,
    AttemptStarted,
)
from projections.projection import Connection, Projection, Write, as_dicts


def requested(position: int, e: AgentRunRequested) -> list[Write]:
    return [
        Write(
            "INSERT INTO executions (run_id, tenant_id, agent_id, agent_config_version, provider, model, status,"
            " context_id, correlation_id, requested_at, updated_at, version, position)"
            " VALUES ($1, $2, $3, $4, $5, $6, 'requested', $7, $11, $8, $8, $9, $10) ON CONFLICT (run_id) DO NOTHING",
            (
                e.originator_id,
                e.metadata.tenant_id,
                e.agent_id,
                e.agent_config_version,
                e.provider,
                e.model,
                e.context_id,
                e.timestamp,
                e.originator_version,
                position,
                e.metadata.correlation_id,
            ),
        )
    ]


def attempt_started(position: int, e: AttemptStarted) -> list[Write]:
    return [
        Write(
            "UPDATE executions SET status = 'running', attempts = $2, provider = $3, model = $4, updated_at = $5,"
            " version = $6, position = $7 WHERE run_id = $1",
            (e.originator_id, e.attempt, e.provider, e.model, e.timestamp, e.originator_version, position),
        )
    ]


def attempt_failed(position: int, e: AttemptFailed) -> list[Write]:
    return [
        Write(
            "UPDATE executions SET error = $2, latency_ms = $3, updated_at = $4, version = $5, position = $6"
            " WHERE run_id = $1",
            (e.originator_id, e.error, e.latency_ms, e.timestamp, e.originator_version, position),
        )
    ]


def succeeded(position: int, e: AgentRunSucceeded) -> list[Write]:
    return [
        Write(
            "UPDATE executions SET status = 'succeeded', output = $2, latency_ms = $3, tokens_in = tokens_in + $4,"
            " tokens_out = tokens_out + $5, cost = cost + $6, error = '', finished_at = $7, updated_at = $7,"
            " version = $8, position = $9, provider = coalesce(nullif($10, ''), provider),"
            " model = coalesce(nullif($11, ''), model) WHERE run_id = $1",
            (
                e.originator_id,
                e.output,
                e.latency_ms,
                e.tokens_in,
                e.tokens_out,
                e.cost,
                e.timestamp,
                e.originator_version,
                position,
                e.provider,  # a fallback's, when it answered
                e.model,
            ),
        )
    ]


def refused(position: int, e: AgentRunRefused) -> list[Write]:
    return [
        Write(
            "UPDATE executions SET status = 'refused', error = $2, refused_until = $3, finished_at = $4,"
            " updated_at = $4, version = $5, position = $6 WHERE run_id = $1",
            (e.originator_id, e.reason, e.retry_at, e.timestamp, e.originator_version, position),
        )
    ]


def finished(status: str) -> Any:
    def handler(position: int, e: AgentRunFailed | AgentRunCancelled) -> list[Write]:
        return [
            Write(
                "UPDATE executions SET status = $2, error = $3, finished_at = $4, updated_at = $4, version = $5,"
                " position = $6 WHERE run_id = $1",
                (e.originator_id, status, e.reason, e.timestamp, e.originator_version, position),
            )
        ]

    return handler


projection = Projection(
    name="executions",
    context="agents",
    tables=("executions",),
    handlers={
        AgentRunRequested: requested,
        AttemptStarted: attempt_started,
        AttemptFailed: attempt_failed,
        AgentRunSucceeded: succeeded,
        AgentRunFailed: finished("failed"),
        AgentRunCancelled: finished("cancelled"),
        AgentRunRefused: refused,
    },
)


async def get_execution(conn: Connection, tenant_id: str, run_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM executions WHERE tenant_id = $1 AND run_id = $2", tenant_id, run_id)
    return dict(row) if row else None


async def list_executions(
    conn: Connection,
    tenant_id: str,
    *,
    status: str | None = None,
    agent_id: UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: tuple[datetime, UUID] | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM executions WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)"
        " AND ($3::uuid IS NULL OR agent_id = $3) AND ($4::timestamptz IS NULL OR requested_at >= $4)"
        " AND ($5::timestamptz IS NULL OR requested_at < $5)"
        " AND ($6::timestamptz IS NULL OR (requested_at, run_id) > ($6, $7))"
        " ORDER BY requested_at, run_id LIMIT $8",
        tenant_id,
        status,
        agent_id,
        since,
        until,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return as_dicts(rows)


async def list_executions_of(conn: Connection, tenant_id: str, correlation_id: UUID) -> list[dict[str, Any]]:
    """The runs a conversation of commands started (a workflow instance's, say)."""
    rows = await conn.fetch(
        "SELECT * FROM executions WHERE tenant_id = $1 AND correlation_id = $2 ORDER BY requested_at, run_id",
        tenant_id,
        correlation_id,
    )
    return as_dicts(rows)


async def recent_executions(conn: Connection, tenant_id: str, *, limit: int = 10) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM executions WHERE tenant_id = $1 ORDER BY requested_at DESC, run_id DESC LIMIT $2",
        tenant_id,
        limit,
    )
    return as_dicts(rows)


async def count_executions_by_status(conn: Connection, tenant_id: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM executions WHERE tenant_id = $1 GROUP BY status", tenant_id
    )
    return {row["status"]: int(row["n"]) for row in rows}
