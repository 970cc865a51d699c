"""The `budgets` read model: each tenant's limits, and per UTC day what its runs and judge calls spent and hold
reserved; `runs` counts the settled runs only."""

from __future__ import annotations

from datetime import date
from typing import Any

from domain.agents.budget import BudgetSet
from domain.agents.budget_ledger import BudgetReserved, BudgetSettled, next_day, next_month
from projections.projection import Connection, Projection, Write


def budget_set(position: int, e: BudgetSet) -> list[Write]:
    limits = e.limits
    return [
        Write(
            "INSERT INTO budgets (tenant_id, budget_id, tokens_per_day, tokens_per_month, cost_per_day, cost_per_month,"
            " created_at, updated_at, version, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)"
            " ON CONFLICT (tenant_id) DO UPDATE SET tokens_per_day = $3, tokens_per_month = $4, cost_per_day = $5,"
            " cost_per_month = $6, updated_at = $7, version = $8, position = $9",
            (
                e.metadata.tenant_id,
                e.originator_id,
                limits.tokens_per_day,
                limits.tokens_per_month,
                limits.cost_per_day,
                limits.cost_per_month,
                e.timestamp,
                e.originator_version,
                position,
            ),
        )
    ]


def reserved(position: int, e: BudgetReserved) -> list[Write]:
    return [
        Write(
            "INSERT INTO budget_usage AS u (tenant_id, day, reserved_tokens, reserved_cost) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (tenant_id, day) DO UPDATE SET"
            " reserved_tokens = u.reserved_tokens + excluded.reserved_tokens,"
            " reserved_cost = u.reserved_cost + excluded.reserved_cost",
            (e.metadata.tenant_id, e.day, e.tokens, e.cost),
        )
    ]


def settled(position: int, e: BudgetSettled) -> list[Write]:
    runs = 1 if e.charge == "run" else 0  # a judge call spends the tenant's budget but is not a run
    return [
        Write(
            "UPDATE budget_usage SET runs = runs + $7, spent_tokens = spent_tokens + $3, spent_cost = spent_cost + $4,"
            " reserved_tokens = reserved_tokens - $5, reserved_cost = reserved_cost - $6"
            " WHERE tenant_id = $1 AND day = $2",
            (e.metadata.tenant_id, e.day, e.tokens, e.cost, e.reserved_tokens, e.reserved_cost, runs),
        )
    ]


projection = Projection(
    name="budgets",
    context="agents",
    tables=("budgets", "budget_usage"),
    handlers={BudgetSet: budget_set, BudgetReserved: reserved, BudgetSettled: settled},
)

USAGE = (
    "SELECT coalesce(sum(runs), 0)::bigint AS runs, coalesce(sum(spent_tokens), 0)::bigint AS spent_tokens,"
    " coalesce(sum(spent_cost), 0) AS spent_cost, coalesce(sum(reserved_tokens), 0)::bigint AS reserved_tokens,"
    " coalesce(sum(reserved_cost), 0) AS reserved_cost FROM budget_usage WHERE tenant_id = $1 AND day >= $2"
    " AND day < $3"
)


async def get_budget(conn: Connection, tenant_id: str, day: date) -> dict[str, Any] | None:
    """The tenant's limits with what was spent and is reserved on `day` and in its month; None without a budget."""
    row = await conn.fetchrow("SELECT * FROM budgets WHERE tenant_id = $1", tenant_id)
    if row is None:
        return None
    first = day.replace(day=1)
    on_day = await conn.fetchrow(USAGE, tenant_id, day, next_day(day).date())
    in_month = await conn.fetchrow(USAGE, tenant_id, first, next_month(day).date())
    # An aggregate without GROUP BY always answers one row.
    return dict(row) | {"day": {"start": day, **dict(on_day or {})}, "month": {"start": first, **dict(in_month or {})}}
