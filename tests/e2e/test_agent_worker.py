"""The agent worker over RabbitMQ: runs executed through the OpenAI SDK, retried after a 429, resumed after a crash."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

import pytest

from commands import agents
from domain.agents.agent_run import AgentRun
from ops.bootstrap import Platform, running_workers
from tests.e2e.processes import kill_hard, start_worker, stop, worker_env
from tests.gateways.fake_llm import FakeLlmServer

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture
def platform(llm_platform: Platform) -> Platform:
    return llm_platform


async def request_runs(platform: Platform, count: int) -> list[UUID]:
    ctx = platform.context(tenant_id="acme", actor="alice")
    agent = await agents.register_agent(
        platform.store, ctx, agents.RegisterAgent(name="w", provider="openai", model="gpt-test")
    )
    runs = []
    for index in range(count):
        result = await agents.request_agent_run(
            platform.store,
            platform.context(tenant_id="acme", actor="alice"),
            agents.RequestAgentRun(agent_id=agent.id, prompt=f"question {index}"),
        )
        runs.append(result.id)
    return runs


async def finished(platform: Platform, runs: list[UUID], timeout: float = 60) -> list[AgentRun]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        loaded = [await platform.store.get(AgentRun, run) for run in runs]
        if all(run.status in {"succeeded", "failed", "cancelled"} for run in loaded):
            return loaded
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"runs not finished: {[r.status for r in loaded]}")
        await asyncio.sleep(0.05)


async def test_requested_runs_are_executed_once_each_through_the_openai_sdk(
    platform: Platform, llm_server: FakeLlmServer
) -> None:
    async with running_workers(platform, projections=[], agents=True):
        runs = await request_runs(platform, 20)
        done = await finished(platform, runs)
    assert {run.status for run in done} == {"succeeded"}
    assert all(run.output == "Hello from gpt-test" for run in done)
    assert all([a.status for a in run.attempts] == ["succeeded"] for run in done)
    assert len(llm_server.requests) == 20


async def test_a_429_is_retried_after_its_delay_and_the_run_succeeds(
    platform: Platform, llm_server: FakeLlmServer
) -> None:
    llm_server.fail_next(429, times=3, retry_after=1)  # the gateway's own three tries all fail
    async with running_workers(platform, projections=[], agents=True):
        [run_id] = await request_runs(platform, 1)
        [run] = await finished(platform, [run_id])
    assert run.status == "succeeded"
    assert [a.status for a in run.attempts] == ["failed", "succeeded"]


async def test_a_worker_killed_mid_call_is_redelivered_and_the_run_succeeds_once(
    platform: Platform, llm_server: FakeLlmServer, database_url: str, pg_schema: str, amqp_url: str, tmp_path: Path
) -> None:
    env = worker_env(database_url, pg_schema, amqp_url) | {
        "AIWP_OPENAI_BASE_URL": f"{llm_server.url}/v1",
        "OPENAI_API_KEY": "test-key",
    }
    llm_server.delay = 3.0  # long enough to kill the worker while it waits for the reply
    worker = start_worker(["worker", "agents"], env, tmp_path / "worker.log")
    async with running_workers(platform, projections=[]):
        [run_id] = await request_runs(platform, 1)
        while not llm_server.requests:
            await asyncio.sleep(0.05)
        kill_hard(worker)
        llm_server.delay = 0.0
        worker = start_worker(["worker", "agents"], env, tmp_path / "worker.log")
        [run] = await finished(platform, [run_id])
    assert stop(worker) == 0
    assert run.status == "succeeded"
    assert [a.status for a in run.attempts] == ["abandoned", "succeeded"]
