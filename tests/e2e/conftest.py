"""A platform on the machine's PostgreSQL and RabbitMQ, with helpers to load it and to check it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ops.bootstrap import Platform, open_platform
from ops.settings import Settings
from tests.gateways.fake_llm import FakeLlmServer
from tests.workload import Workload


@pytest.fixture
async def platform(database_url: str, pg_schema: str, amqp_url: str) -> AsyncIterator[Platform]:
    settings = Settings(
        database_url=database_url, database_schema=pg_schema, amqp_url=amqp_url, db_pool_size=8, read_pool_size=14
    )
    async with open_platform(settings) as made:
        yield made


@pytest.fixture
async def llm_platform(
    database_url: str, pg_schema: str, amqp_url: str, llm_server: FakeLlmServer
) -> AsyncIterator[Platform]:
    """The platform on RabbitMQ, its OpenAI provider pointed at the local LLM server."""
    settings = Settings(
        database_url=database_url,
        database_schema=pg_schema,
        amqp_url=amqp_url,
        openai_base_url=f"{llm_server.url}/v1",
        db_pool_size=8,
        read_pool_size=8,
    )
    async with open_platform(settings, {"OPENAI_API_KEY": "test-key"}) as made:
        yield made


async def load(workload: Workload, commands: int, concurrency: int = 8) -> None:
    """Runs scenarios on `concurrency` loops until about `commands` commands were sent."""

    async def loop() -> None:
        while workload.commands < commands:
            await workload.scenario()

    await asyncio.gather(*(loop() for _ in range(concurrency)))


async def store_positions(platform: Platform) -> list[int]:
    async with platform.pool.acquire() as conn:
        rows = await conn.fetch("SELECT notification_id FROM aiwp_events ORDER BY notification_id")
    return [row["notification_id"] for row in rows]


async def audited_positions(platform: Platform) -> list[int]:
    async with platform.pool.acquire() as conn:
        rows = await conn.fetch("SELECT position FROM audit_events ORDER BY position")
    return [row["position"] for row in rows]
