"""The `workflows` read model: each template's current definition and version."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain.workflows.template import WorkflowTemplateRegistered, WorkflowTemplateRetired, WorkflowTemplateRevised
from projections.projection import Connection, Projection, Write, as_dicts


def registered(position: int, e: WorkflowTemplateRegistered) -> list[Write]:
    return [
        Write(
            "INSERT INTO workflows (template_id, tenant_id, name, template_version, definition, created_at,"
            " updated_at, version, position) VALUES ($1, $2, $3, 1, $4, $5, $5, $6, $7)"
            " ON CONFLICT (template_id) DO NOTHING",
            (
                e.originator_id,
                e.metadata.tenant_id,
                e.name,
                e.definition,  # a Struct: the jsonb codec encodes it in one pass
                e.timestamp,
                e.originator_version,
                position,
            ),
        )
    ]


def revised(position: int, e: WorkflowTemplateRevised) -> list[Write]:
    return [
        Write(
            "UPDATE workflows SET template_version = $2, definition = $3, updated_at = $4, version = $5,"
            " position = $6 WHERE template_id = $1",
            (
                e.originator_id,
                e.template_version,
                e.definition,  # a Struct: the jsonb codec encodes it in one pass
                e.timestamp,
                e.originator_version,
                position,
            ),
        )
    ]


def retired(position: int, e: WorkflowTemplateRetired) -> list[Write]:
    return [
        Write(
            "UPDATE workflows SET retired = true, updated_at = $2, version = $3, position = $4 WHERE template_id = $1",
            (e.originator_id, e.timestamp, e.originator_version, position),
        )
    ]


projection = Projection(
    name="workflows",
    context="workflows",
    tables=("workflows",),
    handlers={
        WorkflowTemplateRegistered: registered,
        WorkflowTemplateRevised: revised,
        WorkflowTemplateRetired: retired,
    },
)


async def get_workflow_template(conn: Connection, tenant_id: str, template_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT * FROM workflows WHERE tenant_id = $1 AND template_id = $2", tenant_id, template_id
    )
    return dict(row) if row else None


async def list_workflow_templates(
    conn: Connection, tenant_id: str, *, after: tuple[datetime, UUID] | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM workflows WHERE tenant_id = $1"
        " AND ($2::timestamptz IS NULL OR (created_at, template_id) > ($2, $3))"
        " ORDER BY created_at, template_id LIMIT $4",
        tenant_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return as_dicts(rows)


async def find_template_by_name(conn: Connection, tenant_id: str, name: str) -> UUID | None:
    """The newest active template of that name in the tenant."""
    value = await conn.fetchval(
        "SELECT template_id FROM workflows WHERE tenant_id = $1 AND name = $2 AND NOT retired"
        " ORDER BY created_at DESC LIMIT 1",
        tenant_id,
        name,
    )
    return value if isinstance(value, UUID) else None
