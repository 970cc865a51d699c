"""The `token_usage` read model: tokens in and out and cost, per tenant, agent, model and UTC day."""

from __future__ import annotations

from datetime import UTC, date
from typing import Any

from domain.agents.agent_run import AgentRunRequested, AgentRunSucceeded, AttemptStarted
from projections.projection import Connection, Projection, Write, as_dicts


def requested(position: int, e: AgentRunRequested) -> list[Write]:
    return [
        Write(
            "INSERT INTO token_usage_runs (run_id, tenant_id, agent_id, model) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (run_id) DO NOTHING",
            (e.originator_id, e.metadata.tenant_id, e.agent_id, e.model),
        )
    ]


def attempt_started(position: int, e: AttemptStarted) -> list[Write]:
    # A fallback provider may answer with another model: usage is counted against the model that answered.
    return [Write("UPDATE token_usage_runs SET model = $2 WHERE run_id = $1", (e.originator_id, e.model))]


def succeeded(position: int, e: AgentRunSucceeded) -> list[Write]:
    return [
        Write(
            "INSERT INTO token_usage AS u (tenant_id, agent_id, model, day, runs, tokens_in, tokens_out, cost)"
            " SELECT tenant_id, agent_id, coalesce(nullif($6, ''), model), $2, 1, $3, $4, $5 FROM token_usage_runs"
            " WHERE run_id = $1"
            " ON CONFLICT (tenant_id, agent_id, model, day) DO UPDATE SET runs = u.runs + 1,"
            " tokens_in = u.tokens_in + excluded.tokens_in, tokens_out = u.tokens_out + excluded.tokens_out,"
            " cost = u.cost + excluded.cost",
            (e.originator_id, e.timestamp.astimezone(UTC).date(), e.tokens_in, e.tokens_out, e.cost, e.model),
        )
    ]


projection = Projection(
    name="token_usage",
    context="agents",
    tables=("token_usage", "token_usage_runs"),
    handlers={AgentRunRequested: requested, AttemptStarted: attempt_started, AgentRunSucceeded: succeeded},
)


async def list_token_usage(
    conn: Connection, tenant_id: str, *, since: date | None = None, until: date | None = None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM token_usage WHERE tenant_id = $1 AND ($2::date IS NULL OR day >= $2)"
        " AND ($3::date IS NULL OR day <= $3) ORDER BY day, agent_id, model",
        tenant_id,
        since,
        until,
    )
    return as_dicts(rows)


async def spend_since(conn: Connection, tenant_id: str, since: date) -> dict[str, Any]:
    row = await conn.fetchrow(
        "SELECT coalesce(sum(runs), 0)::bigint AS runs, coalesce(sum(tokens_in), 0)::bigint AS tokens_in,"
        " coalesce(sum(tokens_out), 0)::bigint AS tokens_out, coalesce(sum(cost), 0) AS cost"
        " FROM token_usage WHERE tenant_id = $1 AND day >= $2",
        tenant_id,
        since,
    )
    return dict(row) if row else {"runs": 0, "tokens_in": 0, "tokens_out": 0, "cost": 0}
