"""Sealing personal data per data subject, and erasing it by dropping the subject's key (ADR 0008)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import msgspec
import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given
from hypothesis import strategies as st

from adapters.event_store.application import StoreApplication, memory_env
from adapters.event_store.mapper import MsgspecMapper, NoKeyRing
from adapters.event_store.sealing import ERASED, PREFIX, new_key, open_sealed, reveal_text, seal
from adapters.event_store.store import EventSourcedStore
from adapters.migrations import apply_migrations
from adapters.postgres import create_pool
from adapters.subject_keys import KeyRing, MemoryKeyTable, PostgresKeyTable, reveal
from commands import agents
from commands.errors import SubjectErased
from domain.agents.agent_run import AgentRun
from domain.codec import encode_event
from domain.personal import SUBJECT
from tests.conftest import postgres_store
from tests.strategies import Clock, any_history

subjects = st.from_regex(SUBJECT, fullmatch=True)
KEY = new_key()


@given(st.text(), subjects, st.text(min_size=1, max_size=20))
def test_a_sealed_string_opens_to_its_plaintext_and_shows_none_of_it(text: str, subject: str, tenant: str) -> None:
    sealed = seal(KEY, tenant, subject, text)
    assert sealed.startswith(f"{PREFIX}{subject}:")
    assert open_sealed(KEY, tenant, subject, sealed.rsplit(":", 1)[1]) == text
    assert reveal_text(sealed, tenant, lambda t, s: KEY) == text


def test_a_sealed_string_opens_only_for_its_own_subject_tenant_and_key() -> None:
    payload = seal(KEY, "acme", "customer-1", "secret").rsplit(":", 1)[1]
    for tenant, subject, key in (
        ("acme", "customer-2", KEY),
        ("other", "customer-1", KEY),
        ("acme", "customer-1", new_key()),
    ):
        with pytest.raises(InvalidTag):
            open_sealed(key, tenant, subject, payload)
    # a sealed string moved to another subject is shown as it is, never opened under that subject's key
    moved = seal(KEY, "acme", "customer-1", "secret").replace(":customer-1:", ":customer-2:")
    assert reveal_text(moved, "acme", lambda t, s: KEY) == moved


def test_an_erased_subjects_strings_read_erased() -> None:
    sealed = seal(KEY, "acme", "customer-1", "secret")
    assert reveal_text(f"to {sealed}", "acme", lambda t, s: None) == f"to {ERASED}"


@given(any_history)
def test_an_event_without_a_subject_is_stored_exactly_as_before(history: Any) -> None:
    mapper = MsgspecMapper(transcoder=None)  # type: ignore[arg-type]
    for event in history.events:
        if not event.metadata.subject:
            assert mapper.to_stored_event(event).state == encode_event(event)
            assert b"subject" not in msgspec.json.encode(event.metadata)


def test_an_event_about_a_subject_is_refused_by_a_store_without_a_key_ring() -> None:
    from domain.agents.agent_run import AgentRunRequested, ChatMessage
    from tests.strategies import BASE_TIME

    ctx = Clock(subject="customer-1").ctx()
    event = AgentRunRequested(
        originator_id=uuid4(),
        originator_version=1,
        timestamp=BASE_TIME,
        metadata=ctx.metadata(),
        agent_id=uuid4(),
        agent_config_version=1,
        provider="scripted",
        model="m",
        temperature=0.0,
        max_tokens=10,
        messages=[ChatMessage(role="user", content="hello")],
    )
    with pytest.raises(NoKeyRing):
        MsgspecMapper(transcoder=None).to_stored_event(event)  # type: ignore[arg-type]


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.integration)])
async def sealed_store(request: pytest.FixtureRequest) -> AsyncIterator[tuple[EventSourcedStore, KeyRing]]:
    """A store that seals, with its key ring: in memory, and on PostgreSQL (loads through asyncpg)."""
    if request.param == "memory":
        store = EventSourcedStore(StoreApplication(env=memory_env()), snapshot_interval=2)
        keyring = KeyRing(MemoryKeyTable(lambda: datetime.now(UTC)))
        store.seal_with(keyring)
        yield store, keyring
        await store.close()
        return
    database_url, schema = request.getfixturevalue("database_url"), request.getfixturevalue("pg_schema")
    store = postgres_store(database_url, schema, snapshot_interval=2)
    store.app.recorder  # noqa: B018 - the tables exist before the first load
    pool = await create_pool(database_url, schema, size=4)
    async with pool.acquire() as conn:
        await apply_migrations(conn)
    keyring = KeyRing(PostgresKeyTable(pool), ttl=0.0)
    store.seal_with(keyring)
    store.read_with(pool)
    yield store, keyring
    await store.close()
    await pool.close()


async def stored_states(store: EventSourcedStore, stream: Any) -> list[bytes]:
    return [s.state for s in store.app.recorder.select_events(stream)]


async def test_a_subjects_run_is_stored_sealed_loaded_in_clear_and_erased_for_good(
    sealed_store: tuple[EventSourcedStore, KeyRing],
) -> None:
    store, keyring = sealed_store
    clock = Clock(subject="customer-1")
    agent = await agents.register_agent(
        store, clock.ctx(), agents.RegisterAgent(name="w", provider="scripted", model="m", system_prompt="be kind")
    )
    asked = await agents.request_agent_run(
        store, clock.ctx(), agents.RequestAgentRun(agent_id=agent.id, prompt="my address is 1 Elm Street")
    )
    for _ in range(3):  # a stream long enough to be snapshotted, were it not about a subject
        await agents.start_run_attempt(
            store, clock.ctx(), agents.StartRunAttempt(run_id=asked.id, provider="s", model="m")
        )
        await agents.record_attempt_failure(
            store, clock.ctx(), agents.RecordAttemptFailure(run_id=asked.id, error="busy", latency_ms=1, retryable=True)
        )
    states = await stored_states(store, asked.id)
    assert all(b"Elm Street" not in state and b"be kind" not in state for state in states)
    assert b"aiwp:sealed:v1:customer-1:" in states[0]
    run = await store.get(AgentRun, asked.id)
    assert [m.content for m in run.messages] == ["be kind", "my address is 1 Elm Street"]
    assert run.subject == "customer-1"
    assert all(e.metadata.subject == "customer-1" for e in store.events_of(asked.id))
    assert store.app.snapshots is not None
    assert list(store.app.snapshots.get(asked.id)) == []  # no plaintext snapshot of a subject's stream

    assert await keyring.erase("tenant-a", "customer-1") is True
    assert await keyring.erase("tenant-a", "customer-1") is False
    assert await keyring.erase("tenant-a", "nobody") is None
    erased = await store.get(AgentRun, asked.id)
    assert [m.content for m in erased.messages] == [ERASED, ERASED]
    with pytest.raises(SubjectErased):
        await agents.request_agent_run(store, clock.ctx(), agents.RequestAgentRun(agent_id=agent.id, prompt="again"))
    # another subject, and events about no subject, carry on
    other = await agents.request_agent_run(
        store, Clock(subject="customer-2").ctx(), agents.RequestAgentRun(agent_id=agent.id, prompt="hi")
    )
    assert [m.content for m in (await store.get(AgentRun, other.id)).messages] == ["be kind", "hi"]
    view = await reveal({"a": [states[0].decode()]}, "tenant-a", keyring)
    assert "Elm Street" not in str(view)


@pytest.mark.integration
async def test_concurrent_first_writes_agree_on_one_key_and_an_erase_reaches_other_processes_within_the_ttl(
    database_url: str, pg_schema: str
) -> None:
    pool = await create_pool(database_url, pg_schema, size=4)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
        rings = [KeyRing(PostgresKeyTable(pool), ttl=0.2) for _ in range(4)]
        await asyncio.gather(*(ring.ensure("acme", "customer-9") for ring in rings))
        keys = {ring.sealing_key("acme", "customer-9") for ring in rings}
        assert len(keys) == 1
        sealed = seal(keys.pop(), "acme", "customer-9", "hello")
        assert await reveal(sealed, "acme", rings[1]) == "hello"
        await rings[0].erase("acme", "customer-9")
        assert await reveal(sealed, "acme", rings[1]) == "hello"  # still cached in that process
        await asyncio.sleep(0.3)
        assert await reveal(sealed, "acme", rings[1]) == ERASED
        with pytest.raises(SubjectErased):
            await rings[2].ensure("acme", "customer-9")
        async with pool.acquire() as conn:
            row = await conn.fetchrow("SELECT key, erased_at FROM subject_keys WHERE subject = 'customer-9'")
        assert row is not None
        assert row["key"] is None
        assert row["erased_at"] is not None
    finally:
        await pool.close()
