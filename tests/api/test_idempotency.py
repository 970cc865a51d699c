"""Idempotency-Key: a retry returns the first answer and writes nothing; a different body is refused."""

from __future__ import annotations

import asyncio
import hashlib

import httpx
import pytest

from adapters.idempotency import PostgresIdempotencyStore
from ops.bootstrap import Platform
from tests.api.issuer import TestIssuer

pytestmark = pytest.mark.integration
AGENT = {"name": "writer", "provider": "scripted", "model": "m"}


async def events_in_store(platform: Platform) -> int:
    async with platform.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM aiwp_events"))


async def test_a_retry_with_the_same_key_and_body_returns_the_first_answer_and_writes_nothing(
    client: httpx.AsyncClient, issuer: TestIssuer, platform: Platform
) -> None:
    headers = {"Authorization": f"Bearer {issuer.token()}", "Idempotency-Key": "create-writer-1"}
    first = await client.post("/v1/agents", json=AGENT, headers=headers)
    written = await events_in_store(platform)
    again = await client.post("/v1/agents", json=AGENT, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert await events_in_store(platform) == written


async def test_the_same_key_with_another_body_answers_422(client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    headers = {"Authorization": f"Bearer {issuer.token()}", "Idempotency-Key": "k"}
    assert (await client.post("/v1/agents", json=AGENT, headers=headers)).status_code == 201
    other = await client.post("/v1/agents", json=AGENT | {"name": "other"}, headers=headers)
    assert other.status_code == 422
    assert "another request body" in other.json()["detail"]


async def test_a_retry_while_the_first_is_running_answers_409(
    client: httpx.AsyncClient, issuer: TestIssuer, platform: Platform
) -> None:
    body = httpx.Request("POST", "http://x/v1/agents", json=AGENT).content
    digest = hashlib.sha256(b"POST /v1/agents\n" + body).digest()
    store = PostgresIdempotencyStore(platform.pool)
    assert await store.claim("acme", "in-flight", digest) == "claimed"  # the first request, still running
    headers = {"Authorization": f"Bearer {issuer.token()}", "Idempotency-Key": "in-flight"}
    response = await client.post("/v1/agents", content=body, headers=headers | {"content-type": "application/json"})
    assert response.status_code == 409


async def test_concurrent_retries_create_one_aggregate(
    client: httpx.AsyncClient, issuer: TestIssuer, platform: Platform
) -> None:
    headers = {"Authorization": f"Bearer {issuer.token()}", "Idempotency-Key": "burst"}
    before = await events_in_store(platform)
    answers = await asyncio.gather(*(client.post("/v1/agents", json=AGENT, headers=headers) for _ in range(8)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {201, 409}
    assert 201 in statuses
    assert await events_in_store(platform) == before + 1


async def test_keys_belong_to_their_tenant(client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    mine = await client.post(
        "/v1/agents", json=AGENT, headers={"Authorization": f"Bearer {issuer.token()}", "Idempotency-Key": "shared"}
    )
    theirs = await client.post(
        "/v1/agents",
        json=AGENT,
        headers={"Authorization": f"Bearer {issuer.token(tenant='globex')}", "Idempotency-Key": "shared"},
    )
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
