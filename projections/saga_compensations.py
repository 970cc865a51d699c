"""The `saga_compensations` read model: each unwinding instance's plan, step by step."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.workflows.instance import CompensationRecorded, CompensationStarted
from projections.projection import Connection, Projection, Write, as_dicts


def planned(position: int, e: CompensationStarted) -> list[Write]:
    return [
        Write(
            "INSERT INTO saga_compensations (instance_id, step_id, tenant_id, plan_index, failed_step, reason,"
            " status, planned_at) VALUES ($1, $2, $3, $4, $5, $6, 'planned', $7)"
            " ON CONFLICT (instance_id, step_id) DO NOTHING",
            (e.originator_id, step_id, e.metadata.tenant_id, index, e.failed_step, e.reason, e.timestamp),
        )
        for index, step_id in enumerate(e.plan)
    ]


def recorded(position: int, e: CompensationRecorded) -> list[Write]:
    return [
        Write(
            "UPDATE saga_compensations SET status = 'compensated', compensated_at = $3"
            " WHERE instance_id = $1 AND step_id = $2",
            (e.originator_id, e.step_id, e.timestamp),
        )
    ]


projection = Projection(
    name="saga_compensations",
    context="workflows",
    tables=("saga_compensations",),
    handlers={CompensationStarted: planned, CompensationRecorded: recorded},
)


async def list_compensations(conn: Connection, tenant_id: str, instance_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM saga_compensations WHERE tenant_id = $1 AND instance_id = $2 ORDER BY plan_index",
        tenant_id,
        instance_id,
    )
    return as_dicts(rows)
