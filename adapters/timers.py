"""Durable timers in PostgreSQL: a due-time table, polled; a timer is deleted only once it was handled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from uuid import UUID

import asyncpg

log = logging.getLogger(__name__)
Fire = Callable[[UUID, datetime], Awaitable[None]]


class PostgresTimers:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def schedule(self, tenant_id: str, instance_id: UUID, due_at: datetime) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO workflow_timers (instance_id, due_at, tenant_id) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING",
                instance_id,
                due_at,
                tenant_id,
            )

    async def fire_due(self, fire: Fire, *, limit: int = 100) -> int:
        """Hands each due timer to `fire`; several pollers share the work (rows locked, others skipped).
        A timer whose handling fails stays, and fires again at the next poll."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT instance_id, due_at FROM workflow_timers WHERE due_at <= now()"
                " ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED",
                limit,
            )
            outcomes = await asyncio.gather(
                *(fire(row["instance_id"], row["due_at"]) for row in rows), return_exceptions=True
            )
            handled = [
                (row["instance_id"], row["due_at"]) for row, out in zip(rows, outcomes, strict=True) if out is None
            ]
            for row, outcome in zip(rows, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    log.warning("timer of instance %s failed; it fires again: %s", row["instance_id"], outcome)
            await conn.executemany("DELETE FROM workflow_timers WHERE instance_id = $1 AND due_at = $2", handled)
        return len(handled)

    async def pending(self) -> int:
        async with self._pool.acquire() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM workflow_timers"))
