"""The `validation_rules` read model: the rules of each rule set's current version."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.validation.ruleset import Rule, RuleSetDefined, RuleSetRevised
from projections.projection import Connection, Projection, Write, as_dicts

INSERT = (
    "INSERT INTO validation_rules (ruleset_id, rule_id, tenant_id, ruleset_version, kind, weight, params)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)


def rule_rows(ruleset_id: UUID, tenant_id: str, version: int, rules: list[Rule]) -> list[Write]:
    return [Write(INSERT, (ruleset_id, r.id, tenant_id, version, r.kind, r.weight, r.params)) for r in rules]


def defined(position: int, e: RuleSetDefined) -> list[Write]:
    return [
        Write("DELETE FROM validation_rules WHERE ruleset_id = $1", (e.originator_id,)),
        *rule_rows(e.originator_id, e.metadata.tenant_id, 1, e.rules),
    ]


def revised(position: int, e: RuleSetRevised) -> list[Write]:
    return [
        Write("DELETE FROM validation_rules WHERE ruleset_id = $1", (e.originator_id,)),
        *rule_rows(e.originator_id, e.metadata.tenant_id, e.ruleset_version, e.rules),
    ]


projection = Projection(
    name="validation_rules",
    context="validation",
    tables=("validation_rules",),
    handlers={RuleSetDefined: defined, RuleSetRevised: revised},
)


async def list_rules(conn: Connection, tenant_id: str, ruleset_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM validation_rules WHERE tenant_id = $1 AND ruleset_id = $2 ORDER BY rule_id",
        tenant_id,
        ruleset_id,
    )
    return as_dicts(rows)
