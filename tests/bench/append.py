"""Append throughput of the event store, beside raw asyncpg inserts measured in the same run.

    RESULT append_1_producer          events/s, one command producer (one event per command)
    RESULT append_16_producers        events/s, 16 concurrent command producers (group commit)
    RESULT reference_asyncpg_8_conns  events/s, single-row INSERT transactions on 8 asyncpg connections
    RATIO  append_16_producers        16-producer figure / reference (target >= 0.8)

Run: `make bench` (or `python -m tests.bench.append`); it uses AIWP_TEST_DATABASE_URL
(default postgresql://postgres@127.0.0.1:5432/test) and a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
import psycopg
from psycopg import sql

from adapters.event_store.application import StoreApplication, memory_env, postgres_env
from adapters.event_store.store import EventSourcedStore
from commands.agents import RegisterAgent, register_agent
from domain.agents.agent import Agent
from domain.aggregate import CommandContext

DATABASE_URL = os.environ.get("AIWP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
SECONDS = float(os.environ.get("AIWP_BENCH_SECONDS", "5"))
COMMAND = RegisterAgent(name="bench", provider="scripted", model="m", system_prompt="You answer support tickets.")


def context() -> CommandContext:
    correlation = uuid.uuid4()
    return CommandContext(
        at=datetime.now(UTC),
        tenant_id="bench",
        actor="bench",
        correlation_id=correlation,
        causation_id=correlation,
    )


async def run_for(seconds: float, producers: int, once: Callable[[], Awaitable[object]]) -> float:
    """Events per second that `producers` loops of `once` reach in `seconds` (after a short warm-up)."""
    stop = time.perf_counter() + 0.5
    count = 0

    async def loop(until: float, counting: bool) -> None:
        nonlocal count
        while time.perf_counter() < until:
            await once()
            if counting:
                count += 1

    await asyncio.gather(*(loop(stop, False) for _ in range(producers)))
    start = time.perf_counter()
    await asyncio.gather(*(loop(start + seconds, True) for _ in range(producers)))
    return count / (time.perf_counter() - start)


async def store_rate(schema: str, producers: int) -> float:
    store = EventSourcedStore(StoreApplication(env=postgres_env(DATABASE_URL, schema=schema, pool_size=8)))
    try:
        return await run_for(SECONDS, producers, lambda: register_agent(store, context(), COMMAND))
    finally:
        await store.close()


async def reference_rate(schema: str, connections: int) -> float:
    """Raw asyncpg: one single-row INSERT transaction at a time per connection, same table shape and payload."""
    _, event = Agent.register(
        context(),
        uuid.uuid4(),
        name=COMMAND.name,
        provider=COMMAND.provider,
        model=COMMAND.model,
        system_prompt=COMMAND.system_prompt,
        temperature=COMMAND.temperature,
        max_tokens=COMMAND.max_tokens,
    )
    sample = StoreApplication(env=memory_env()).mapper.to_stored_event(event)
    conns = [await asyncpg.connect(DATABASE_URL) for _ in range(connections)]
    await conns[0].execute(
        f"CREATE TABLE {schema}.reference_events (originator_id uuid NOT NULL, originator_version integer NOT NULL, "
        "topic text, state bytea, notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
    )
    insert = (
        f"INSERT INTO {schema}.reference_events (originator_id, originator_version, topic, state) "
        "VALUES ($1, 1, $2, $3)"
    )
    pool: asyncio.Queue[asyncpg.Connection] = asyncio.Queue()
    for conn in conns:
        pool.put_nowait(conn)

    async def once() -> None:
        conn = await pool.get()
        try:
            await conn.execute(insert, uuid.uuid4(), sample.topic, sample.state)
        finally:
            pool.put_nowait(conn)

    try:
        return await run_for(SECONDS, connections, once)
    finally:
        for conn in conns:
            await conn.close()


def main() -> None:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        one = asyncio.run(store_rate(schema, 1))
        sixteen = asyncio.run(store_rate(schema, 16))
        reference = asyncio.run(reference_rate(schema, 8))
    finally:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    print(f"RESULT append_1_producer {one:.0f} events/s")
    print(f"RESULT append_16_producers {sixteen:.0f} events/s")
    print(f"RESULT reference_asyncpg_8_conns {reference:.0f} events/s")
    print(f"RATIO append_16_producers {sixteen / reference:.2f}")


if __name__ == "__main__":
    main()
