"""Shared fixtures: the machine's PostgreSQL (a fresh schema per test), stores and command contexts."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql

from adapters.event_store.application import StoreApplication, memory_env, postgres_env
from adapters.event_store.store import EventSourcedStore

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


def test_database_url() -> str:
    return os.environ.get("AIWP_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)


@pytest.fixture(scope="session")
def database_url() -> str:
    """The machine's PostgreSQL; unreachable is a failure under CI=true and a skip elsewhere."""
    url = test_database_url()
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        message = f"PostgreSQL at {url} is unreachable: {error}".strip()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


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
    """The event store, once in memory and once on PostgreSQL: one contract, two backends."""
    if request.param == "memory":
        made = EventSourcedStore(StoreApplication(env=memory_env()), snapshot_interval=3)
    else:
        made = postgres_store(
            request.getfixturevalue("database_url"), request.getfixturevalue("pg_schema"), snapshot_interval=3
        )
    yield made
    await made.close()
