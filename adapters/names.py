"""Names to ids, read from the read models (agents and rule sets are registered well before they are used)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from projections.agents import find_agent_by_name
from projections.scoring_models import find_ruleset_by_name


class ReadModelNames:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def agent(self, tenant_id: str, name: str) -> UUID | None:
        async with self._pool.acquire() as conn:
            return await find_agent_by_name(conn, tenant_id, name)

    async def ruleset(self, tenant_id: str, name: str) -> UUID | None:
        async with self._pool.acquire() as conn:
            return await find_ruleset_by_name(conn, tenant_id, name)
