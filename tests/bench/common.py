"""What the benchmarks share: a schema and a RabbitMQ virtual host of their own, and a platform on them."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import psycopg
from psycopg import sql

from ops.bootstrap import Platform, open_platform
from ops.settings import Settings

DATABASE_URL = os.environ.get("AIWP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("AIWP_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@contextmanager
def scratch_schema() -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@contextmanager
def scratch_vhost() -> Iterator[str]:
    vhost = f"aiwp-bench-{uuid.uuid4().hex[:8]}"
    for args in (["add_vhost", vhost], ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]):
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True)
    try:
        yield AMQP_URL.rstrip("/") + "/" + vhost
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False, capture_output=True)


@asynccontextmanager
async def bench_platform(schema: str, amqp_url: str | None) -> AsyncIterator[Platform]:
    settings = Settings(
        database_url=DATABASE_URL, database_schema=schema, amqp_url=amqp_url, db_pool_size=8, read_pool_size=8
    )
    async with open_platform(settings) as platform:
        yield platform
