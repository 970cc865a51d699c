"""The `agents` read model: each agent's current configuration."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain.agents.agent import AgentArchived, AgentReconfigured, AgentRegistered
from projections.projection import Connection, Projection, Write, as_dicts


def registered(position: int, e: AgentRegistered) -> list[Write]:
    return [
        Write(
            "INSERT INTO agents (agent_id, tenant_id, name, provider, model, system_prompt, temperature, max_tokens,"
            " config_version, created_at, updated_at, version, position, base_url, fallbacks, json_output)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9, $10, $11, $12, $13, $14)"
            " ON CONFLICT (agent_id) DO NOTHING",
            (
                e.originator_id,
                e.metadata.tenant_id,
                e.name,
                e.provider,
                e.model,
                e.system_prompt,
                e.temperature,
                e.max_tokens,
                e.timestamp,
                e.originator_version,
                position,
                e.base_url,
                e.fallbacks,
                e.json_output,
            ),
        )
    ]


def reconfigured(position: int, e: AgentReconfigured) -> list[Write]:
    return [
        Write(
            "UPDATE agents SET provider = $2, model = $3, system_prompt = $4, temperature = $5, max_tokens = $6,"
            " config_version = $7, updated_at = $8, version = $9, position = $10, base_url = $11, fallbacks = $12,"
            " json_output = $13 WHERE agent_id = $1",
            (
                e.originator_id,
                e.provider,
                e.model,
                e.system_prompt,
                e.temperature,
                e.max_tokens,
                e.config_version,
                e.timestamp,
                e.originator_version,
                position,
                e.base_url,
                e.fallbacks,
                e.json_output,
            ),
        )
    ]


def archived(position: int, e: AgentArchived) -> list[Write]:
    return [
        Write(
            "UPDATE agents SET archived = true, updated_at = $2, version = $3, position = $4 WHERE agent_id = $1",
            (e.originator_id, e.timestamp, e.originator_version, position),
        )
    ]


projection = Projection(
    name="agents",
    context="agents",
    tables=("agents",),
    handlers={AgentRegistered: registered, AgentReconfigured: reconfigured, AgentArchived: archived},
)


async def get_agent(conn: Connection, tenant_id: str, agent_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM agents WHERE tenant_id = $1 AND agent_id = $2", tenant_id, agent_id)
    return dict(row) if row else None


async def list_agents(
    conn: Connection, tenant_id: str, *, after: tuple[datetime, UUID] | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM agents WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR (created_at, agent_id) > ($2, $3))"
        " ORDER BY created_at, agent_id LIMIT $4",
        tenant_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return as_dicts(rows)


async def find_agent_by_name(conn: Connection, tenant_id: str, name: str) -> UUID | None:
    """The active agent of that name in the tenant (the newest, if several)."""
    value = await conn.fetchval(
        "SELECT agent_id FROM agents WHERE tenant_id = $1 AND name = $2 AND NOT archived"
        " ORDER BY created_at DESC LIMIT 1",
        tenant_id,
        name,
    )
    return value if isinstance(value, UUID) else None
