"""The workflow engine: concurrent agent runs against a slow LLM, and 3-step workflows per second.

    RESULT runs_1000_wall               s for 1,000 concurrent agent runs, the LLM answering after 200 ms
    RESULT reference_store_3000_events  s for the store to append the same 3,000 events (3 per run), 1,000 writers
    RESULT ideal_1000_runs              s, 200 ms + the store's time for those events
    RATIO  runs_1000_wall               wall / ideal (target <= 5)
    RESULT workflows_per_second_<bus>   3-step workflows/s, the LLM answering at once, over RabbitMQ and
                                        over the embedded (in-process) bus
    RATIO  workflows_per_second_<bus>   rate / 100 (target >= 1)
    RESULT cpu_per_<unit>_<figure>_<process>  CPU ms per run or workflow spent by the platform's processes,
                                        the LLM server, PostgreSQL and RabbitMQ over the timed stretch
    RESULT cpu_bound_<figure>           runs or workflows/s that the machine's cores allow at that CPU cost
                                        (what the figure could reach if every process kept every core busy)

Over the machine's PostgreSQL and RabbitMQ. The runs: `aiwp worker relay` and three `aiwp worker agents`
processes (about 333 runs in flight each), as a deployment runs them; this process makes the requests.
The workflows: one process with the relay, the agent worker (64 in flight), the orchestrator and the
projections it reads (agents, workflow_instances), over RabbitMQ and over the embedded bus.
The LLM is the local wire-format server of the tests, in a process of its own, driven through the official
OpenAI SDK. On this 2-core machine the database, the broker and the LLM server share the cores
with the platform.

Run: `make bench` (or `python -m tests.bench.engine`).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple
from uuid import UUID

import aio_pika

from adapters.bus.port import AGENT_WORK
from commands import agents, workflows
from domain.agents.agent_run import AgentRun
from domain.aggregate import CommandContext
from domain.workflows.definition import StepDefinition, WorkflowDefinition
from domain.workflows.instance import WorkflowInstance
from ops.bootstrap import Platform, open_platform, running_workers
from ops.settings import Settings
from tests.bench.common import DATABASE_URL, CpuLedger, print_cpu, scratch_schema, scratch_vhost

RUNS = 1_000
WORKER_PROCESSES = 3
LLM_DELAY = 0.2
WORKFLOWS = 400
ENGINE_PROJECTIONS = ["agents", "workflow_instances"]


class LlmServer(NamedTuple):
    url: str
    pid: int


@contextmanager
def llm_server(delay: float) -> Iterator[LlmServer]:
    """The tests' wire-format LLM server in a process of its own, so that it takes no time from ours."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.gateways.fake_llm", str(delay)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield LlmServer(process.stdout.readline().strip() + "/v1", process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)


KEYS = {"OPENAI_API_KEY": "bench-key"}


def settings(schema: str, amqp_url: str | None, *, agent_concurrency: int) -> Settings:
    return Settings(
        database_url=DATABASE_URL,
        database_schema=schema,
        amqp_url=amqp_url,
        db_pool_size=8,
        read_pool_size=8,
        agent_concurrency=agent_concurrency,
    )


def context() -> CommandContext:
    correlation = uuid.uuid4()
    return CommandContext(
        at=datetime.now(UTC), tenant_id="bench", actor="bench", correlation_id=correlation, causation_id=correlation
    )


SUCCESS = {AgentRun: "AgentRunSucceeded", WorkflowInstance: "WorkflowCompleted"}
FAILURES = {
    AgentRun: ("AgentRunFailed", "AgentRunCancelled", "AgentRunRefused"),
    WorkflowInstance: ("WorkflowFailed", "WorkflowCompensated", "WorkflowCancelled"),
}


async def until_done(platform: Platform, kind: type[AgentRun] | type[WorkflowInstance], ids: list[UUID]) -> None:
    """Waits until every stream has its success event: one query per look, so that watching costs little."""
    while True:
        async with platform.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT split_part(topic, ':', 2) AS type, count(*) AS n FROM aiwp_events"
                " WHERE originator_id = ANY($1::uuid[]) AND split_part(topic, ':', 2) = ANY($2::text[]) GROUP BY 1",
                ids,
                [SUCCESS[kind], *FAILURES[kind]],
            )
        counts = {row["type"]: row["n"] for row in rows}
        if any(counts.get(failure) for failure in FAILURES[kind]):
            raise RuntimeError(f"some {kind.__name__} ended badly: {counts}")
        if counts.get(SUCCESS[kind], 0) == len(ids):
            return
        await asyncio.sleep(0.05)


async def consumers_of(amqp_url: str, queue: str, count: int, timeout: float = 60.0) -> None:
    """Waits until `count` consumers take from the queue (the workers are up), or fails."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        deadline = time.monotonic() + timeout
        while ((await channel.declare_queue(queue, passive=True)).declaration_result.consumer_count or 0) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{queue} has fewer than {count} consumers after {timeout:g} s")
            await asyncio.sleep(0.1)
    finally:
        await connection.close()


@asynccontextmanager
async def agent_workers(count: int, schema: str, amqp_url: str) -> AsyncIterator[list[int]]:
    """`aiwp worker agents` processes, as a deployment scales the worker out, and `aiwp worker relay`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIWP_")} | {
        "AIWP_DATABASE_URL": DATABASE_URL,
        "AIWP_DATABASE_SCHEMA": schema,
        "AIWP_AMQP_URL": amqp_url,
        "AIWP_AGENT_CONCURRENCY": str(RUNS // count),
        "AIWP_DB_POOL_SIZE": "8",
        "OPENAI_API_KEY": "bench-key",
    }
    aiwp = Path(sys.executable).with_name("aiwp")
    workers = [subprocess.Popen([str(aiwp), "worker", "agents"], env=env) for _ in range(count)]
    workers.append(subprocess.Popen([str(aiwp), "worker", "relay"], env=env))
    try:
        try:
            await consumers_of(amqp_url, AGENT_WORK.queue, count)  # before the clock starts
        except RuntimeError as error:
            exits = [worker.poll() for worker in workers]
            raise RuntimeError(f"{error}; worker exit codes (None: running): {exits}") from None
        yield [worker.pid for worker in workers]
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)


async def concurrent_runs(platform: Platform, slow_llm: LlmServer, workers: list[int]) -> Measured:
    agent = await agents.register_agent(
        platform.store,
        context(),
        agents.RegisterAgent(name="slow", provider="openai_compatible", model="gpt-bench", base_url=slow_llm.url),
    )
    await relayed(platform, agent.position)  # the relay process is up and at the head
    ledger = CpuLedger({"platform": [os.getpid(), *workers], "llm_server": [slow_llm.pid]})
    cpu_before = ledger.read()
    began = time.perf_counter()
    requested = await asyncio.gather(
        *(
            agents.request_agent_run(
                platform.store, context(), agents.RequestAgentRun(agent_id=agent.id, prompt=f"question {i}")
            )
            for i in range(RUNS)
        )
    )
    await until_done(platform, AgentRun, [r.id for r in requested])
    return Measured(time.perf_counter() - began, CpuLedger.between(cpu_before, ledger.read()))


async def relayed(platform: Platform, position: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        async with platform.pool.acquire() as conn:
            if (await conn.fetchval("SELECT max(position) FROM relay_positions") or 0) >= position:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the relay did not reach position {position} within {timeout:g} s")
        await asyncio.sleep(0.05)


async def store_reference(platform: Platform, events: int) -> float:
    """The same number of events, appended as 1,000 writers would: one run request each, then two more."""

    async def writer(i: int) -> None:
        agent = await agents.register_agent(
            platform.store, context(), agents.RegisterAgent(name=f"r{i}", provider="scripted", model="m")
        )
        for _ in range(events // RUNS - 1):
            await agents.reconfigure_agent(
                platform.store,
                context(),
                agents.ReconfigureAgent(
                    agent_id=agent.id, provider="scripted", model="m2", system_prompt="", temperature=0.1, max_tokens=9
                ),
            )

    began = time.perf_counter()
    await asyncio.gather(*(writer(i) for i in range(RUNS)))
    return time.perf_counter() - began


def three_steps() -> WorkflowDefinition:
    def step(name: str, needs: list[str]) -> StepDefinition:
        return StepDefinition(
            id=name, kind="agent", needs=needs, params={"agent": "fast", "prompt": f"{name}: {{{{ inputs.topic }}}}"}
        )

    return WorkflowDefinition(
        inputs=["topic"], steps=[step("plan", []), step("write", ["plan"]), step("edit", ["write"])]
    )


class Measured(NamedTuple):
    wall: float  # s
    cpu: dict[str, float]  # s spent by process: the platform, the LLM server, PostgreSQL, RabbitMQ


async def workflows_per_second(platform: Platform, fast_llm: LlmServer) -> Measured:
    agent = await agents.register_agent(
        platform.store,
        context(),
        agents.RegisterAgent(name="fast", provider="openai_compatible", model="gpt-bench", base_url=fast_llm.url),
    )
    template = await workflows.register_workflow_template(
        platform.store, context(), workflows.RegisterWorkflowTemplate(name="three", definition=three_steps())
    )
    async with running_workers(platform, projections=ENGINE_PROJECTIONS, agents=True, orchestrator=True):
        assert await platform.wait_for(max(agent.position, template.position), timeout=30, names=["agents"])
        ledger = CpuLedger({"platform": [os.getpid()], "llm_server": [fast_llm.pid]})
        cpu_before = ledger.read()
        began = time.perf_counter()
        started = await asyncio.gather(
            *(
                workflows.start_workflow_instance(
                    platform.store,
                    context(),
                    workflows.StartWorkflowInstance(template_id=template.id, inputs={"topic": f"t{i}"}),
                )
                for i in range(WORKFLOWS)
            )
        )
        await until_done(platform, WorkflowInstance, [s.id for s in started])
        return Measured(time.perf_counter() - began, CpuLedger.between(cpu_before, ledger.read()))


async def main() -> None:
    with llm_server(LLM_DELAY) as slow_llm, llm_server(0.0) as fast_llm:
        with scratch_schema() as schema, scratch_vhost() as amqp_url:
            # 1,000 runs in flight at once: the agent worker takes them all.
            async with open_platform(settings(schema, amqp_url, agent_concurrency=RUNS), KEYS) as platform:
                async with agent_workers(WORKER_PROCESSES, schema, amqp_url) as workers:
                    runs = await concurrent_runs(platform, slow_llm, workers)
                reference = await store_reference(platform, 3 * RUNS)
        rates: dict[str, Measured] = {}
        for bus in ("rabbitmq", "embedded"):
            with scratch_schema() as schema, scratch_vhost() as amqp_url:
                chosen = settings(schema, amqp_url if bus == "rabbitmq" else None, agent_concurrency=64)
                async with open_platform(chosen, KEYS) as platform:
                    rates[bus] = await workflows_per_second(platform, fast_llm)
    ideal = LLM_DELAY + reference
    print(f"RESULT runs_1000_wall {runs.wall:.2f} s")
    print(f"RESULT reference_store_3000_events {reference:.2f} s")
    print(f"RESULT ideal_1000_runs {ideal:.2f} s")
    print(f"RATIO runs_1000_wall {runs.wall / ideal:.2f}")
    print_cpu("runs_1000", runs.cpu, RUNS, "run")
    for bus, measured in rates.items():
        rate = WORKFLOWS / measured.wall
        print(f"RESULT workflows_per_second_{bus} {rate:.0f} workflows/s")
        print(f"RATIO workflows_per_second_{bus} {rate / 100:.2f}")
        print_cpu(f"workflows_{bus}", measured.cpu, WORKFLOWS, "workflow")


if __name__ == "__main__":
    asyncio.run(main())
