"""Shared fixtures: the machine's PostgreSQL (a fresh schema per test), stores and command contexts."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql

from adapters.event_store.application import StoreApplication, memory_env, postgres_env
from adapters.event_store.store import EventSourcedStore
from adapters.postgres import create_pool
from tests.gateways.fake_llm import FakeLlmServer

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_TEST_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def test_database_url() -> str:
    return os.environ.get("AIWP_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)


@pytest.fixture(scope="session")
def database_url() -> str:
    """The machine's PostgreSQL; unreachable is a failure under CI=true and a skip elsewhere."""
    url = test_database_url()
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        unreachable(f"PostgreSQL at {url} is unreachable: {error}".strip())
    return url


def unreachable(message: str) -> None:
    """Under CI=true a missing service fails the run; elsewhere the test is skipped, saying why."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def amqp_url() -> Iterator[str]:
    """A RabbitMQ virtual host of the test's own on the machine's broker, deleted afterwards."""
    base = os.environ.get("AIWP_TEST_AMQP_URL", DEFAULT_TEST_AMQP_URL)
    vhost = f"aiwp-test-{uuid4().hex[:12]}"
    try:
        for args in (["add_vhost", vhost], ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]):
            subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        unreachable(f"RabbitMQ (rabbitmqctl) is not usable here: {error}")
    yield base.rstrip("/") + "/" + vhost
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False, capture_output=True, timeout=60)


@pytest.fixture
def pg_schema(database_url: str) -> Iterator[str]:
    """A schema of its own for one test, dropped afterwards."""
    name = f"t_{uuid4().hex[:16]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def postgres_store(database_url: str, schema: str, **options: object) -> EventSourcedStore:
    app = StoreApplication(env=postgres_env(database_url, schema=schema, pool_size=8))
    return EventSourcedStore(app, read_threads=6, **options)  # type: ignore[arg-type]


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.integration)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[EventSourcedStore]:
    """The event store, once in memory and once on PostgreSQL (loads through asyncpg, as the platform's do):
    one contract, two backends."""
    if request.param == "memory":
        made = EventSourcedStore(StoreApplication(env=memory_env()), snapshot_interval=3)
        yield made
        await made.close()
        return
    database_url, schema = request.getfixturevalue("database_url"), request.getfixturevalue("pg_schema")
    made = postgres_store(database_url, schema, snapshot_interval=3)
    made.app.recorder  # noqa: B018 - the tables exist before the first load
    pool = await create_pool(database_url, schema, size=4)
    made.read_with(pool)
    yield made
    await made.close()
    await pool.close()


@pytest.fixture
def llm_server() -> Iterator[FakeLlmServer]:
    """The local server of the OpenAI and Anthropic wire formats, in a thread of the test's process."""
    made = FakeLlmServer()
    yield made
    made.stop()
