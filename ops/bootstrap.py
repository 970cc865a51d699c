"""The composition root: settings in, a running platform out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from adapters.bus.in_process import InProcessBus
from adapters.bus.port import (
    AGENT_WORK,
    ORCHESTRATOR_WORK,
    VALIDATION_WORK,
    Consumer,
    EventBus,
    WorkOutcome,
    WorkQueue,
)
from adapters.bus.rabbitmq import RabbitBus
from adapters.embedded_postgres import EmbeddedPostgres
from adapters.event_store.application import StoreApplication, postgres_env
from adapters.event_store.log_reader import LogReader
from adapters.event_store.mapper import MsgspecMapper
from adapters.event_store.store import EventSourcedStore
from adapters.migrations import apply_migrations
from adapters.names import ReadModelNames
from adapters.orchestration import run_orchestrator
from adapters.postgres import connect, create_pool
from adapters.projector import Projector, binding_of, run_projector
from adapters.relay import Relay, envelope_of
from adapters.subject_keys import KeyRing, PostgresKeyTable
from adapters.timers import PostgresTimers
from commands.agent_runner import WORKER, AgentRunner
from commands.budgets import TenantBudgets
from commands.llm import LlmProvider
from commands.orchestrator import Orchestrator
from commands.validation_runner import WORKER as VALIDATION_WORKER
from commands.validation_runner import ValidationRunner
from domain.agents.agent_run import (
    AgentRunCancelled,
    AgentRunFailed,
    AgentRunRefused,
    AgentRunRequested,
    AgentRunSucceeded,
)
from domain.aggregate import CommandContext
from domain.codec import topic_of
from domain.envelope import Envelope
from domain.validation.validation import ValidationCompleted, ValidationRequested
from ops.llm import build_llm, build_secrets
from ops.prices import price_table
from ops.settings import Settings
from projections.catalog import PROJECTIONS
from projections.workflow_instances import unfinished_instances

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Platform:
    """Everything a process of the platform shares."""

    settings: Settings
    database_url: str
    store: EventSourcedStore
    pool: asyncpg.Pool
    reader: LogReader
    bus: EventBus
    projectors: dict[str, Projector] = field(default_factory=dict)
    llm: LlmProvider | None = None
    keyring: KeyRing | None = None  # the data subjects' keys (ADR 0008)

    @property
    def names(self) -> ReadModelNames:
        return ReadModelNames(self.pool)

    def agent_runner(self) -> AgentRunner:
        assert self.llm is not None, "open the platform with its LLM providers"

        def context(tenant_id: str, correlation_id: UUID) -> CommandContext:
            return self.context(tenant_id=tenant_id, actor=WORKER, correlation_id=correlation_id)

        return AgentRunner(
            store=self.store,
            llm=self.llm,
            prices=price_table(self.settings.prices),
            context=context,
            budgets=TenantBudgets(self.store),
            max_attempts=self.settings.agent_max_attempts,
        )

    def orchestrator(self) -> Orchestrator:
        return Orchestrator(
            store=self.store,
            names=self.names,
            timers=PostgresTimers(self.pool),
            clock=lambda: datetime.now(UTC),
            concurrency=self.settings.orchestrator_concurrency,
        )

    async def run_orchestrator(self, stop: asyncio.Event) -> None:
        """The orchestrator until `stop`; it first waits for the instances' read model to catch up,
        so that its sweep sees every unfinished instance."""

        async def unfinished() -> list[UUID]:
            async with self.pool.acquire() as conn:
                head = await self.reader.head(conn)
            await self.projectors["workflow_instances"].wait_for(head, timeout=60.0)
            async with self.pool.acquire() as conn:
                return await unfinished_instances(conn)

        await run_orchestrator(
            self.orchestrator(),
            self.bus,
            PostgresTimers(self.pool),
            stop,
            unfinished=unfinished,
            concurrency=self.settings.orchestrator_concurrency,
        )

    def validation_runner(self) -> ValidationRunner:
        assert self.llm is not None, "open the platform with its LLM providers"
        settings = self.settings

        def context(tenant_id: str, correlation_id: UUID) -> CommandContext:
            return self.context(tenant_id=tenant_id, actor=VALIDATION_WORKER, correlation_id=correlation_id)

        async def agents_seen(position: int) -> bool:
            return await self.projectors["agents"].wait_for(position, settings.judge_lookup_wait_seconds)

        return ValidationRunner(
            store=self.store,
            llm=self.llm,
            names=self.names,
            prices=price_table(settings.prices),
            context=context,
            agents_seen=agents_seen,
            budgets=TenantBudgets(self.store),
            max_judge_attempts=settings.judge_max_attempts,
        )

    def context(
        self, *, tenant_id: str, actor: str, correlation_id: UUID | None = None, causation_id: UUID | None = None
    ) -> CommandContext:
        """A command context stamped with the wall clock; the only place the write side reads the time."""
        correlation = correlation_id or uuid4()
        return CommandContext(
            at=datetime.now(UTC),
            tenant_id=tenant_id,
            actor=actor,
            correlation_id=correlation,
            causation_id=causation_id or correlation,
        )

    def relay(self) -> Relay:
        settings = self.settings
        return Relay(
            lambda: connect(self.database_url, settings.database_schema),
            self.reader,
            self.bus,
            batch_size=settings.relay_batch,
            filters=self.filters(),
        )

    def filters(self) -> dict[str, list[str]]:
        """The event sets that projection queues take (filter id → topics), for the relay to chain."""
        return {
            p.projection.filter_id: p.projection.topics() or []
            for p in self.projectors.values()
            if p.projection.context is not None
        }

    async def wait_for(self, position: int, timeout: float = 10.0, names: Sequence[str] | None = None) -> bool:
        """Waits until the projections (all, or those named) have applied everything up to `position`."""
        chosen = [self.projectors[name] for name in names] if names else list(self.projectors.values())
        results = await asyncio.gather(*(p.wait_for(position, timeout) for p in chosen))
        return all(results)


def build_store(settings: Settings, database_url: str) -> EventSourcedStore:
    """The event store on one database, configured from the settings."""
    app = StoreApplication(
        env=postgres_env(
            database_url,
            schema=settings.database_schema,
            pool_size=settings.db_pool_size,
            cipher_key=settings.cipher_key,
        )
    )
    return EventSourcedStore(
        app,
        snapshot_interval=settings.snapshot_interval,
        max_batch=settings.group_commit_max_batch,
        max_wait=settings.group_commit_max_wait_ms / 1000,
        read_threads=max(1, settings.db_pool_size - 1),
    )


def build_bus(settings: Settings) -> EventBus:
    if settings.amqp_url:
        return RabbitBus(settings.amqp_url, window=settings.relay_window)
    return InProcessBus()


SETUP_LOCK = 0x61697773  # "aiws"; the second key is the schema's hash


@asynccontextmanager
async def setting_up(database_url: str, schema: str) -> AsyncIterator[None]:
    """One process at a time creates the store's tables and functions in a schema: processes starting together
    (workers scaled out, a rollout) would otherwise race in `CREATE OR REPLACE FUNCTION` ("tuple concurrently
    updated") and one of them would exit."""
    conn = await connect(database_url, schema)
    try:
        await conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", SETUP_LOCK, schema)
        yield
    finally:
        await conn.close()  # ends the session, and its lock with it


@asynccontextmanager
async def open_platform(settings: Settings, environ: Mapping[str, str] | None = None) -> AsyncIterator[Platform]:
    """Starts what the settings ask for (an embedded PostgreSQL when no URL is set), migrates, stops it all on exit."""
    embedded: EmbeddedPostgres | None = None
    database_url = settings.database_url
    if database_url is None:
        embedded = EmbeddedPostgres(Path(settings.data_dir) / "pgdata")
        database_url = embedded.url
    try:
        async with contextlib.AsyncExitStack() as stack:
            async with setting_up(database_url, settings.database_schema):
                store = build_store(settings, database_url)
            stack.push_async_callback(store.close)
            pool = await create_pool(database_url, settings.database_schema, size=settings.read_pool_size)
            stack.push_async_callback(pool.close)
            loads = await create_pool(database_url, settings.database_schema, size=settings.db_pool_size)
            stack.push_async_callback(loads.close)
            store.read_with(loads)
            async with pool.acquire() as conn:
                applied = await apply_migrations(conn)
            if applied:
                log.info("applied migrations %s", ", ".join(applied))
            keyring = KeyRing(PostgresKeyTable(pool), ttl=settings.subject_key_ttl_seconds)
            store.seal_with(keyring)
            mapper = store.app.mapper
            assert isinstance(mapper, MsgspecMapper)
            reader = LogReader(mapper)
            bus = build_bus(settings)
            stack.push_async_callback(bus.close)
            platform = Platform(
                settings=settings, database_url=database_url, store=store, pool=pool, reader=reader, bus=bus
            )
            platform.keyring = keyring
            platform.projectors = {
                name: Projector(projection, pool, reader, batch_size=settings.projector_batch)
                for name, projection in PROJECTIONS.items()
            }
            # every consumer queue exists (and buffers) before any relay publishes
            await bus.start([binding_of(p.projection) for p in platform.projectors.values()])
            # before any relay publishes, so runs and validations are never unroutable
            await bus.declare_work([AGENT_WORK, VALIDATION_WORK, ORCHESTRATOR_WORK])
            platform.llm = await build_llm(settings, build_secrets(settings, environ or {}))
            stack.push_async_callback(platform.llm.close)
            yield platform
    finally:
        if embedded is not None:
            embedded.stop()


@asynccontextmanager
async def running_workers(
    platform: Platform,
    *,
    relay: bool = True,
    projections: Sequence[str] | None = None,
    agents: bool = False,
    validation: bool = False,
    orchestrator: bool = False,
) -> AsyncIterator[asyncio.Event]:
    """Runs the relay and projectors as tasks for the duration of the block; yields their stop signal."""
    stop = asyncio.Event()
    settings = platform.settings
    tasks: list[asyncio.Task[None]] = []
    if relay:
        tasks.append(asyncio.create_task(platform.relay().run_forever(stop), name="relay"))
    for name in projections if projections is not None else list(platform.projectors):
        projector = platform.projectors[name]
        tasks.append(
            asyncio.create_task(
                run_projector(
                    projector,
                    platform.bus,
                    stop,
                    prefetch=settings.projector_prefetch,
                    max_failures=settings.projector_max_failures,
                ),
                name=f"projector {name}",
            )
        )
    if orchestrator:
        tasks.append(asyncio.create_task(platform.run_orchestrator(stop), name="orchestrator"))
    consumers = []
    if agents:
        consumers.append(await start_agent_worker(platform))
    if validation:
        consumers.append(await start_validation_worker(platform))
    try:
        yield stop
    finally:
        stop.set()
        for consumer in consumers:
            await consumer.stop()
        await asyncio.gather(*tasks, return_exceptions=True)


async def resend_lost_work(platform: Platform, work: WorkQueue, begun: type[Any], ended: Sequence[type[Any]]) -> int:
    """On the in-process bus, work items live in memory: at start, every run (or validation) the log shows begun
    and not ended is handed out again. A duplicate of one still on its way costs a skipped attempt: the runners
    decide on the aggregate's state. RabbitMQ's durable queues keep their items, so nothing is resent there."""
    if not isinstance(platform.bus, InProcessBus):
        return 0
    async with platform.pool.acquire() as conn:
        begun_events = await platform.reader.unended(conn, [topic_of(begun)], [topic_of(kind) for kind in ended])
    if begun_events:
        log.info("resending %d unfinished %s work item(s) after a restart", len(begun_events), work.queue)
        await platform.bus.redeliver(work, [envelope_of(recorded, 0, 0) for recorded in begun_events])
    return len(begun_events)


async def start_agent_worker(platform: Platform) -> Consumer:
    """Competing consumer of `agent.commands`: one attempt per delivery, retries through delay queues."""
    runner = platform.agent_runner()

    async def handle(envelope: Envelope) -> WorkOutcome:
        result = await runner.execute(envelope.stream_id)
        if result.outcome == "retry":
            return result.retry_after or 1.0
        return "done"

    consumer = await platform.bus.consume_work(AGENT_WORK, handle, concurrency=platform.settings.agent_concurrency)
    await resend_lost_work(
        platform, AGENT_WORK, AgentRunRequested, (AgentRunSucceeded, AgentRunFailed, AgentRunCancelled, AgentRunRefused)
    )
    return consumer


async def start_validation_worker(platform: Platform) -> Consumer:
    """Competing consumer of `validation.commands`: one evaluation per delivery, judge retries through delay queues."""
    runner = platform.validation_runner()

    async def handle(envelope: Envelope) -> WorkOutcome:
        result = await runner.execute(envelope.stream_id)
        if result.outcome == "retry":
            return result.retry_after or 1.0
        if result.outcome == "dead":
            return "dead"
        return "done"

    consumer = await platform.bus.consume_work(
        VALIDATION_WORK, handle, concurrency=platform.settings.validation_concurrency
    )
    await resend_lost_work(platform, VALIDATION_WORK, ValidationRequested, (ValidationCompleted,))
    return consumer
