"""Idempotency keys in PostgreSQL: one row per (tenant, key), claimed before the command runs."""

from __future__ import annotations

import secrets
from datetime import timedelta

import asyncpg

from commands.ports import Claim, Replay

TTL = timedelta(hours=24)


class PostgresIdempotencyStore:
    def __init__(self, pool: asyncpg.Pool, *, ttl: timedelta = TTL) -> None:
        self._pool = pool
        self._ttl = ttl

    async def claim(self, tenant_id: str, key: str, request_hash: bytes) -> Claim:
        async with self._pool.acquire() as conn, conn.transaction():
            # An expired key is forgotten first, so it can be claimed again.
            await conn.execute(
                "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND expires_at < now()", tenant_id, key
            )
            claimed = await conn.fetchval(
                "INSERT INTO idempotency_keys (tenant_id, key, request_hash, state, expires_at)"
                " VALUES ($1, $2, $3, 'running', now() + $4) ON CONFLICT (tenant_id, key) DO NOTHING RETURNING 1",
                tenant_id,
                key,
                request_hash,
                self._ttl,
            )
            if claimed:
                # Now and then, sweep keys past their 24 hours (a claim is the one write this table gets).
                if secrets.randbelow(100) == 0:
                    await conn.execute(
                        "DELETE FROM idempotency_keys WHERE ctid IN"
                        " (SELECT ctid FROM idempotency_keys WHERE expires_at < now() LIMIT 1000)"
                    )
                return "claimed"
            row = await conn.fetchrow(
                "SELECT request_hash, state, status_code, body, headers FROM idempotency_keys"
                " WHERE tenant_id = $1 AND key = $2",
                tenant_id,
                key,
            )
        if row is None:  # released between our insert and our read: let the caller retry as new
            return "in_progress"
        if bytes(row["request_hash"]) != request_hash:
            return "mismatch"
        if row["state"] == "running":
            return "in_progress"
        return Replay(status_code=row["status_code"], body=bytes(row["body"]), headers=dict(row["headers"]))

    async def complete(self, tenant_id: str, key: str, answer: Replay) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE idempotency_keys SET state = 'done', status_code = $3, body = $4, headers = $5"
                " WHERE tenant_id = $1 AND key = $2",
                tenant_id,
                key,
                answer.status_code,
                answer.body,
                answer.headers,
            )

    async def release(self, tenant_id: str, key: str) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND state = 'running'", tenant_id, key
            )
