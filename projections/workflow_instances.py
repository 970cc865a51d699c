"""The `workflow_instances` read model: each instance's status, inputs and outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain.workflows.instance import (
    CompensationStarted,
    WorkflowCancelled,
    WorkflowCompensated,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowInstanceStarted,
)
from projections.projection import Connection, Projection, Write, as_dicts

FINISH = (
    "UPDATE workflow_instances SET status = $2, reason = CASE WHEN $3 = '' THEN reason ELSE $3 END,"
    " finished_at = CASE WHEN $6 THEN $4 ELSE finished_at END, updated_at = $4, version = $5, position = $7"
    " WHERE instance_id = $1"
)


def started(position: int, e: WorkflowInstanceStarted) -> list[Write]:
    return [
        Write(
            "INSERT INTO workflow_instances (instance_id, tenant_id, template_id, template_name, template_version,"
            " status, inputs, started_at, updated_at, version, position)"
            " VALUES ($1, $2, $3, $4, $5, 'running', $6, $7, $7, $8, $9) ON CONFLICT (instance_id) DO NOTHING",
            (
                e.originator_id,
                e.metadata.tenant_id,
                e.template_id,
                e.template_name,
                e.template_version,
                e.inputs,
                e.timestamp,
                e.originator_version,
                position,
            ),
        )
    ]


def status_change(status: str, *, final: bool) -> Any:
    def handler(position: int, e: Any) -> list[Write]:
        reason = getattr(e, "reason", "")
        return [Write(FINISH, (e.originator_id, status, reason, e.timestamp, e.originator_version, final, position))]

    return handler


projection = Projection(
    name="workflow_instances",
    context="workflows",
    tables=("workflow_instances",),
    handlers={
        WorkflowInstanceStarted: started,
        WorkflowCompleted: status_change("completed", final=True),
        WorkflowFailed: status_change("failed", final=True),
        CompensationStarted: status_change("compensating", final=False),
        WorkflowCompensated: status_change("compensated", final=True),
        WorkflowCancelled: status_change("cancelled", final=True),
    },
)


async def get_workflow_instance(conn: Connection, tenant_id: str, instance_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT * FROM workflow_instances WHERE tenant_id = $1 AND instance_id = $2", tenant_id, instance_id
    )
    return dict(row) if row else None


async def list_workflow_instances(
    conn: Connection,
    tenant_id: str,
    *,
    status: str | None = None,
    template_id: UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: tuple[datetime, UUID] | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM workflow_instances WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)"
        " AND ($3::uuid IS NULL OR template_id = $3) AND ($4::timestamptz IS NULL OR started_at >= $4)"
        " AND ($5::timestamptz IS NULL OR started_at < $5)"
        " AND ($6::timestamptz IS NULL OR (started_at, instance_id) > ($6, $7))"
        " ORDER BY started_at, instance_id LIMIT $8",
        tenant_id,
        status,
        template_id,
        since,
        until,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return as_dicts(rows)


async def count_instances_by_status(conn: Connection, tenant_id: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM workflow_instances WHERE tenant_id = $1 GROUP BY status", tenant_id
    )
    return {row["status"]: int(row["n"]) for row in rows}


async def unfinished_instances(conn: Connection) -> list[UUID]:
    """Instances still running or unwinding, across tenants: what an orchestrator looks at when it starts."""
    rows = await conn.fetch("SELECT instance_id FROM workflow_instances WHERE status IN ('running', 'compensating')")
    return [row["instance_id"] for row in rows]
