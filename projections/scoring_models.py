"""The `scoring_models` read model: each rule set's threshold and weights, at its current version."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain.validation.ruleset import RuleSetDefined, RuleSetRevised
from projections.projection import Connection, Projection, Write, as_dicts


def defined(position: int, e: RuleSetDefined) -> list[Write]:
    return [
        Write(
            "INSERT INTO scoring_models (ruleset_id, tenant_id, name, ruleset_version, threshold, rule_count,"
            " total_weight, created_at, updated_at, version, position)"
            " VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $7, $8, $9) ON CONFLICT (ruleset_id) DO NOTHING",
            (
                e.originator_id,
                e.metadata.tenant_id,
                e.name,
                e.threshold,
                len(e.rules),
                sum(r.weight for r in e.rules),
                e.timestamp,
                e.originator_version,
                position,
            ),
        )
    ]


def revised(position: int, e: RuleSetRevised) -> list[Write]:
    return [
        Write(
            "UPDATE scoring_models SET ruleset_version = $2, threshold = $3, rule_count = $4, total_weight = $5,"
            " updated_at = $6, version = $7, position = $8 WHERE ruleset_id = $1",
            (
                e.originator_id,
                e.ruleset_version,
                e.threshold,
                len(e.rules),
                sum(r.weight for r in e.rules),
                e.timestamp,
                e.originator_version,
                position,
            ),
        )
    ]


projection = Projection(
    name="scoring_models",
    context="validation",
    tables=("scoring_models",),
    handlers={RuleSetDefined: defined, RuleSetRevised: revised},
)


async def get_scoring_model(conn: Connection, tenant_id: str, ruleset_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT * FROM scoring_models WHERE tenant_id = $1 AND ruleset_id = $2", tenant_id, ruleset_id
    )
    return dict(row) if row else None


async def list_scoring_models(
    conn: Connection, tenant_id: str, *, after: tuple[datetime, UUID] | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM scoring_models WHERE tenant_id = $1"
        " AND ($2::timestamptz IS NULL OR (created_at, ruleset_id) > ($2, $3))"
        " ORDER BY created_at, ruleset_id LIMIT $4",
        tenant_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return as_dicts(rows)


async def find_ruleset_by_name(conn: Connection, tenant_id: str, name: str) -> UUID | None:
    """The rule set of that name in the tenant (the newest, if several)."""
    value = await conn.fetchval(
        "SELECT ruleset_id FROM scoring_models WHERE tenant_id = $1 AND name = $2 ORDER BY created_at DESC LIMIT 1",
        tenant_id,
        name,
    )
    return value if isinstance(value, UUID) else None
