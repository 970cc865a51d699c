"""The orchestrator's answers to a run refused by the tenant's budget: the step waits or fails, as it says."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from uuid import UUID

import pytest

from adapters.event_store.application import StoreApplication, memory_env
from adapters.event_store.store import EventSourcedStore
from commands import agents, workflows
from commands.orchestrator import Orchestrator
from commands.unit_of_work import new_aggregate_id
from domain.agents.agent_run import AgentRun
from domain.workflows.definition import StepDefinition, WorkflowDefinition
from domain.workflows.instance import WorkflowInstance
from tests.commands.test_orchestrator_machine import DictNames, ListTimers
from tests.strategies import BASE_TIME, Clock


@pytest.fixture
async def store() -> AsyncIterator[EventSourcedStore]:
    made = EventSourcedStore(StoreApplication(env=memory_env()))
    yield made
    await made.close()


class World:
    def __init__(self, store: EventSourcedStore) -> None:
        self.store = store
        self.clock = Clock()
        self.now = BASE_TIME
        self.names = DictNames()
        self.timers = ListTimers()
        self.orchestrator = Orchestrator(store=store, names=self.names, timers=self.timers, clock=lambda: self.now)

    async def start(self, on_budget: str) -> UUID:
        writer = await agents.register_agent(
            self.store, self.clock.ctx(), agents.RegisterAgent(name="writer", provider="scripted", model="s")
        )
        self.names.agents["writer"] = writer.id
        step = StepDefinition(
            id="draft", kind="agent", params={"agent": "writer", "prompt": "Write.", "on_budget": on_budget}
        )
        template = await workflows.register_workflow_template(
            self.store,
            self.clock.ctx(),
            workflows.RegisterWorkflowTemplate(name="t", definition=WorkflowDefinition(steps=[step])),
        )
        started = await workflows.start_workflow_instance(
            self.store, self.clock.ctx(), workflows.StartWorkflowInstance(template_id=template.id)
        )
        await self.orchestrator.reconcile(started.id)
        return started.id

    async def run_of(self, instance_id: UUID, attempt: int) -> AgentRun:
        key = f"{instance_id}/draft/{attempt}"
        return await self.store.get(AgentRun, new_aggregate_id(self.clock.ctx(), AgentRun, key))

    async def refuse(self, run: AgentRun, until: datetime) -> None:
        command = agents.RefuseAgentRun(run_id=run.id, reason="the day's token budget is spent", retry_at=until)
        await agents.refuse_agent_run(self.store, self.clock.ctx("agent-worker"), command)


async def test_a_step_that_waits_runs_again_once_the_budget_resets(store: EventSourcedStore) -> None:
    world = World(store)
    instance_id = await world.start(on_budget="wait")
    resets = world.now + timedelta(hours=3)
    await world.refuse(await world.run_of(instance_id, 1), resets)
    await world.orchestrator.reconcile(instance_id)
    instance = await store.get(WorkflowInstance, instance_id)
    assert instance.steps["draft"].status == "pending"
    assert instance.steps["draft"].not_before == resets
    assert resets in world.timers.due  # a durable wake-up at the reset
    await world.orchestrator.reconcile(instance_id)  # too early: nothing happens
    assert (await store.get(WorkflowInstance, instance_id)).version == instance.version
    world.now = resets
    await world.orchestrator.reconcile(instance_id, due=resets)
    second = await world.run_of(instance_id, 2)
    assert second.status == "requested"
    assert (await store.get(WorkflowInstance, instance_id)).steps["draft"].failures == 0


async def test_a_step_that_fails_on_budget_fails_without_retrying(store: EventSourcedStore) -> None:
    world = World(store)
    instance_id = await world.start(on_budget="fail")
    await world.refuse(await world.run_of(instance_id, 1), world.now + timedelta(hours=3))
    await world.orchestrator.reconcile(instance_id)
    instance = await store.get(WorkflowInstance, instance_id)
    assert instance.status == "failed"
    assert "refused: the day's token budget is spent" in instance.steps["draft"].error
