"""Sagas under crashes: 4-step workflows failing at each step k, the orchestrator SIGKILLed at step boundaries.

Everything runs on the machine's PostgreSQL and RabbitMQ: the relay, the projectors and the agent worker in
this process, the orchestrator as `aiwp worker orchestrator`, killed the hard way whenever another slice of
the steps has finished, and started again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import pytest

from commands import agents, workflows
from commands.unit_of_work import new_aggregate_id
from domain.agents.agent_run import AgentRun
from domain.aggregate import CommandContext
from domain.workflows.definition import Compensation, StepDefinition, WorkflowDefinition
from domain.workflows.instance import FINAL, CompensationRecorded, StepCompleted, StepStarted, WorkflowInstance
from ops.bootstrap import Platform, open_platform, running_workers
from ops.settings import Settings
from tests.e2e.processes import kill_hard, start_worker, stop, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

STEPS = ["s1", "s2", "s3", "s4"]
RUNS_PER_CASE = 20
CASES = [0, 1, 2, 3, 4]  # the step that fails for good; 0: none does


def saga(fail_at: int) -> WorkflowDefinition:
    def step(index: int) -> StepDefinition:
        name = f"s{index}"
        return StepDefinition(
            id=name,
            kind="agent",
            needs=[f"s{index - 1}"] if index > 1 else [],
            params={
                "agent": "broken" if index == fail_at else "worker",
                "prompt": f"do {name} for {{{{ instance_id }}}}",
            },
            compensate=Compensation(
                kind="agent", params={"agent": "worker", "prompt": f"undo {name} for {{{{ instance_id }}}}"}
            ),
        )

    return WorkflowDefinition(steps=[step(i) for i in range(1, 5)])


@pytest.fixture
async def platform(database_url: str, pg_schema: str, amqp_url: str) -> AsyncIterator[Platform]:
    settings = Settings(
        database_url=database_url,
        database_schema=pg_schema,
        amqp_url=amqp_url,
        db_pool_size=8,
        read_pool_size=10,
        agent_concurrency=32,
    )
    async with open_platform(settings, {}) as made:
        yield made


async def progress(platform: Platform) -> int:
    async with platform.pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM aiwp_events WHERE topic LIKE '%:StepCompleted'"
                " OR topic LIKE '%:StepFailed' OR topic LIKE '%:CompensationRecorded'"
            )
        )


async def test_every_saga_ends_completed_or_compensated_with_the_orchestrator_killed_at_step_boundaries(
    platform: Platform, database_url: str, pg_schema: str, amqp_url: str, tmp_path: Path
) -> None:
    def ctx() -> CommandContext:
        return platform.context(tenant_id="acme", actor="alice")

    store = platform.store
    await agents.register_agent(store, ctx(), agents.RegisterAgent(name="worker", provider="scripted", model="s-1"))
    # No key for Anthropic here: every run of this agent fails for good, and its step with it.
    broken = await agents.register_agent(
        store, ctx(), agents.RegisterAgent(name="broken", provider="anthropic", model="claude-test")
    )
    templates = {}
    for case in CASES:
        registered = await workflows.register_workflow_template(
            store, ctx(), workflows.RegisterWorkflowTemplate(name=f"saga-{case}", definition=saga(case))
        )
        templates[case] = registered.id
    env = worker_env(database_url, pg_schema, amqp_url)
    log = tmp_path / "orchestrator.log"
    kills = 0
    async with running_workers(platform, agents=True):
        assert await platform.wait_for(broken.position, names=["agents"])
        orchestrator = start_worker(["worker", "orchestrator"], env, log)
        cases: dict[UUID, int] = {}
        for _ in range(RUNS_PER_CASE):
            for case in CASES:
                started = await workflows.start_workflow_instance(
                    store, ctx(), workflows.StartWorkflowInstance(template_id=templates[case])
                )
                cases[started.id] = case
        # Each case makes 4 boundaries (steps done, failed or compensated) per instance: kill at every tenth.
        expected = RUNS_PER_CASE * 4 * len(CASES)
        next_kill = expected // 10
        deadline = asyncio.get_running_loop().time() + 240
        while True:
            instances = [await store.get(WorkflowInstance, i) for i in cases]
            if all(instance.status in FINAL for instance in instances):
                break
            assert asyncio.get_running_loop().time() < deadline, (
                f"stuck: {sorted({i.status for i in instances})}; kills={kills}; see {log}"
            )
            if await progress(platform) >= next_kill:
                kill_hard(orchestrator)
                kills += 1
                next_kill += expected // 10
                orchestrator = start_worker(["worker", "orchestrator"], env, log)
            await asyncio.sleep(0.1)
    stop(orchestrator)  # it may have been killed and restarted just now: its exit code says nothing here
    assert kills >= 5, f"the orchestrator was killed only {kills} times"

    for instance_id, case in cases.items():
        instance = await store.get(WorkflowInstance, instance_id)
        events = store.events_of(instance_id)
        completed = [e.step_id for e in events if isinstance(e, StepCompleted)]
        compensated = [e.step_id for e in events if isinstance(e, CompensationRecorded)]
        starts = [(e.step_id, e.attempt) for e in events if isinstance(e, StepStarted)]
        assert len(starts) == len(set(starts)), f"a step attempt started twice: {starts}"
        if case == 0:
            assert instance.status == "completed"
            assert completed == STEPS
            assert compensated == []
        else:
            # The first step failing leaves nothing to undo: the instance fails without a compensation.
            assert instance.status == ("failed" if case == 1 else "compensated"), (case, instance.reason)
            assert completed == STEPS[: case - 1]
            assert compensated == list(reversed(completed)), "each completed step compensated once, in reverse"
            assert all(e.error == "" for e in events if isinstance(e, CompensationRecorded))
        for step_id, attempt in starts:
            run = await store.get(AgentRun, new_aggregate_id(ctx(), AgentRun, f"{instance_id}/{step_id}/{attempt}"))
            assert sum(1 for a in run.attempts if a.status == "succeeded") <= 1
