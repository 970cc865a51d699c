"""The `contexts` read model: each run's conversation, message by message."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.agents.agent_run import AgentRunRequested, AgentRunSucceeded
from projections.projection import Connection, Projection, Write, as_dicts

INSERT = (
    "INSERT INTO contexts (run_id, seq, tenant_id, role, content, recorded_at) VALUES ($1, $2, $3, $4, $5, $6)"
    " ON CONFLICT (run_id, seq) DO NOTHING"
)


def requested(position: int, e: AgentRunRequested) -> list[Write]:
    return [
        Write(INSERT, (e.originator_id, seq, e.metadata.tenant_id, m.role, m.content, e.timestamp))
        for seq, m in enumerate(e.messages, start=1)
    ]


def succeeded(position: int, e: AgentRunSucceeded) -> list[Write]:
    # The reply follows the messages sent; a run succeeds once, so it is the last message.
    return [
        Write(
            "INSERT INTO contexts (run_id, seq, tenant_id, role, content, recorded_at)"
            " SELECT $1, coalesce(max(seq), 0) + 1, $2, 'assistant', $3, $4 FROM contexts WHERE run_id = $1"
            " ON CONFLICT (run_id, seq) DO NOTHING",
            (e.originator_id, e.metadata.tenant_id, e.output, e.timestamp),
        )
    ]


projection = Projection(
    name="contexts",
    context="agents",
    tables=("contexts",),
    handlers={AgentRunRequested: requested, AgentRunSucceeded: succeeded},
)


async def get_context(conn: Connection, tenant_id: str, run_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT seq, role, content, recorded_at FROM contexts WHERE tenant_id = $1 AND run_id = $2 ORDER BY seq",
        tenant_id,
        run_id,
    )
    return as_dicts(rows)
