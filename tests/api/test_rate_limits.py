"""Rate limits per subject and per tenant in Redis: atomic across processes, closed when Redis is down."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
import redis.asyncio as redis

from adapters.http.rate_limit import RedisRateLimiter
from ops.bootstrap import open_platform
from ops.http import build_app, build_edge
from tests.api.conftest import api_settings, asgi_client
from tests.api.issuer import TestIssuer
from tests.conftest import unreachable
from tests.ops.test_serve import free_port

pytestmark = pytest.mark.integration
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis_url() -> str:
    client = redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, redis.RedisError) as error:
        unreachable(f"Redis at {REDIS_URL} is unreachable: {error}")
    finally:
        await client.aclose()
    return REDIS_URL


async def test_the_limit_is_atomic_across_limiters_sharing_redis(redis_url: str) -> None:
    clients = [redis.from_url(redis_url) for _ in range(4)]
    limiters = [RedisRateLimiter(c) for c in clients]
    key = f"aiwp:test:{uuid4().hex}"
    try:
        waits = await asyncio.gather(*(limiters[i % 4].hit([(key, 50, 60)]) for i in range(200)))
    finally:
        for client in clients:
            await client.aclose()
    assert sum(1 for w in waits if w == 0) == 50
    assert all(0 < w <= 60 for w in waits if w > 0)


async def test_a_caller_over_its_limit_gets_429_with_retry_after(
    database_url: str, pg_schema: str, issuer: TestIssuer, tmp_path: Path, redis_url: str
) -> None:
    settings = api_settings(database_url, pg_schema, issuer, tmp_path, redis_url=redis_url, rate_limit_per_subject=3)
    subject = f"burst-{uuid4().hex}"
    async with open_platform(settings) as platform:
        edge = await build_edge(settings)
        app = build_app(platform, edge)
        try:
            async with asgi_client(app) as client:
                headers = {"Authorization": f"Bearer {issuer.token(sub=subject)}"}
                statuses = [(await client.get("/v1/agents", headers=headers)).status_code for _ in range(4)]
                last = await client.get("/v1/agents", headers=headers)
        finally:
            await edge.close()
    assert statuses == [200, 200, 200, 429]
    assert last.status_code == 429
    assert 1 <= int(last.headers["retry-after"]) <= 60
    assert last.headers["content-type"].startswith("application/problem+json")


async def test_with_redis_unreachable_the_api_fails_closed(
    database_url: str, pg_schema: str, issuer: TestIssuer, tmp_path: Path
) -> None:
    settings = api_settings(database_url, pg_schema, issuer, tmp_path, redis_url="redis://127.0.0.1:9/0")
    async with open_platform(settings) as platform:
        edge = await build_edge(settings)
        app = build_app(platform, edge)
        try:
            async with asgi_client(app) as client:
                headers = {"Authorization": f"Bearer {issuer.token()}"}
                write = await client.post(
                    "/v1/agents", json={"name": "w", "provider": "scripted", "model": "m"}, headers=headers
                )
                read = await client.get("/v1/agents", headers=headers)
                ready = await client.get("/health/ready")
        finally:
            await edge.close()
    assert write.status_code == 503
    assert read.status_code == 503
    assert "retry-after" in write.headers
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"].startswith("unavailable")
    conn = await asyncpg.connect(database_url)
    try:
        written = await conn.fetchval(f'SELECT count(*) FROM "{pg_schema}".aiwp_events')
    finally:
        await conn.close()
    assert written == 0  # nothing was written while the limiter could not be asked


async def test_when_redis_stops_the_api_fails_closed_and_recovers_when_it_is_back(
    database_url: str, pg_schema: str, issuer: TestIssuer, tmp_path: Path
) -> None:
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        settings = api_settings(database_url, pg_schema, issuer, tmp_path, redis_url=f"redis://127.0.0.1:{port}/0")
        async with open_platform(settings) as platform:
            edge = await build_edge(settings)
            app = build_app(platform, edge)
            try:
                async with asgi_client(app) as client:
                    headers = {"Authorization": f"Bearer {issuer.token()}"}
                    for _ in range(50):  # the server is starting
                        if (await client.get("/v1/agents", headers=headers)).status_code == 200:
                            break
                        await asyncio.sleep(0.1)
                    assert (await client.get("/v1/agents", headers=headers)).status_code == 200
                    server.terminate()
                    server.wait(timeout=10)
                    stopped = await client.get("/v1/agents", headers=headers)
                    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    statuses = []
                    for _ in range(50):
                        statuses.append((await client.get("/v1/agents", headers=headers)).status_code)
                        if statuses[-1] == 200:
                            break
                        await asyncio.sleep(0.1)
            finally:
                await edge.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert stopped.status_code == 503
    assert statuses[-1] == 200
