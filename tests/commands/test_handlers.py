"""Command handlers on the in-memory store: idempotent creates, tenants, expected versions, conversations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from adapters.event_store.application import StoreApplication, memory_env
from adapters.event_store.store import EventSourcedStore
from commands import agents, validation, workflows
from commands.errors import AggregateNotFound, ConcurrencyError
from domain.agents.agent import Agent
from domain.agents.agent_run import AgentRun, ChatMessage
from domain.agents.errors import InvalidRunTransition
from domain.validation.ruleset import Rule
from domain.validation.validation import Validation
from domain.workflows.definition import StepDefinition, WorkflowDefinition
from domain.workflows.instance import WorkflowInstance
from tests.strategies import Clock


@pytest.fixture
async def memory() -> AsyncIterator[EventSourcedStore]:
    store = EventSourcedStore(StoreApplication(env=memory_env()))
    yield store
    await store.close()


def register(key: str | None = None, name: str = "writer") -> agents.RegisterAgent:
    return agents.RegisterAgent(
        name=name, provider="scripted", model="m", system_prompt="be brief", idempotency_key=key
    )


async def test_a_retried_create_with_the_same_key_returns_the_first_aggregate(memory: EventSourcedStore) -> None:
    clock = Clock()
    first = await agents.register_agent(memory, clock.ctx(), register("key-1"))
    again = await agents.register_agent(memory, clock.ctx(), register("key-1", name="other"))
    assert (first.created, again.created) == (True, False)
    assert (again.id, again.position) == (first.id, first.position)
    assert len(memory.events_of(first.id)) == 1
    assert (await memory.get(Agent, first.id)).name == "writer"


async def test_the_same_key_in_another_tenant_creates_another_aggregate(memory: EventSourcedStore) -> None:
    mine = await agents.register_agent(memory, Clock("tenant-a").ctx(), register("key-1"))
    theirs = await agents.register_agent(memory, Clock("tenant-b").ctx(), register("key-1"))
    assert mine.id != theirs.id
    assert theirs.created


async def test_another_tenants_aggregate_is_not_found(memory: EventSourcedStore) -> None:
    created = await agents.register_agent(memory, Clock("tenant-a").ctx(), register())
    with pytest.raises(AggregateNotFound):
        await agents.archive_agent(
            memory, Clock("tenant-b").ctx(), agents.ArchiveAgent(agent_id=created.id, reason="x")
        )
    assert not (await memory.get(Agent, created.id)).archived


async def test_an_update_with_a_stale_expected_version_is_a_conflict(memory: EventSourcedStore) -> None:
    clock = Clock()
    created = await agents.register_agent(memory, clock.ctx(), register())
    command = agents.ReconfigureAgent(
        agent_id=created.id,
        provider="openai",
        model="gpt",
        system_prompt="",
        temperature=0.5,
        max_tokens=10,
        expected_version=1,
    )
    changed = await agents.reconfigure_agent(memory, clock.ctx(), command)
    assert changed.version == 2
    with pytest.raises(ConcurrencyError, match="at version 2, not 1"):
        await agents.reconfigure_agent(memory, clock.ctx(), command)


async def test_a_run_continues_an_earlier_runs_conversation(memory: EventSourcedStore) -> None:
    clock = Clock()
    agent = await agents.register_agent(memory, clock.ctx(), register())
    first = await agents.request_agent_run(memory, clock.ctx(), agents.RequestAgentRun(agent_id=agent.id, prompt="hi"))
    with pytest.raises(InvalidRunTransition, match="only a succeeded run"):
        await agents.request_agent_run(
            memory, clock.ctx(), agents.RequestAgentRun(agent_id=agent.id, prompt="more", context_id=first.id)
        )
    await agents.start_run_attempt(
        memory, clock.ctx(), agents.StartRunAttempt(run_id=first.id, provider="s", model="m")
    )
    await agents.complete_agent_run(
        memory,
        clock.ctx(),
        agents.CompleteAgentRun(
            run_id=first.id, output="hello", latency_ms=3, tokens_in=2, tokens_out=1, cost=Decimal("0.01")
        ),
    )
    second = await agents.request_agent_run(
        memory, clock.ctx(), agents.RequestAgentRun(agent_id=agent.id, prompt="more", context_id=first.id)
    )
    run = await memory.get(AgentRun, second.id)
    assert run.messages == [
        ChatMessage("system", "be brief"),
        ChatMessage("user", "hi"),
        ChatMessage("assistant", "hello"),
        ChatMessage("user", "more"),
    ]


async def test_a_validation_scores_the_local_rules(memory: EventSourcedStore) -> None:
    clock = Clock()
    ruleset = await validation.define_ruleset(
        memory,
        clock.ctx(),
        validation.DefineRuleSet(
            name="r",
            threshold=0.6,
            rules=[Rule(id="short", kind="length", params={"max": 5}), Rule(id="pii", kind="pii", weight=2)],
        ),
    )
    opened = await validation.request_validation(
        memory,
        clock.ctx(),
        validation.RequestValidation(ruleset_id=ruleset.id, subject_type="text", subject_id="1", output="mail a@b.co"),
    )
    pending = await memory.get(Validation, opened.id)
    results = validation.evaluate_local_rules(pending.rules, pending.output)
    await validation.complete_validation(
        memory, clock.ctx(), validation.CompleteValidation(validation_id=opened.id, results=results)
    )
    done = await memory.get(Validation, opened.id)
    assert (done.score, done.passed) == (0.0, False)
    assert "rule 'pii' failed: text contains personal data: email" in done.feedback


async def test_a_workflow_runs_to_completion_through_the_handlers(memory: EventSourcedStore) -> None:
    clock = Clock()
    definition = WorkflowDefinition(
        steps=[
            StepDefinition(id="a", kind="agent", params={"agent": "w", "prompt": "p"}),
            StepDefinition(
                id="b", kind="notify", needs=["a"], params={"channel": "email", "recipient": "r", "template": "t"}
            ),
        ]
    )
    template = await workflows.register_workflow_template(
        memory, clock.ctx(), workflows.RegisterWorkflowTemplate(name="t", definition=definition)
    )
    started = await workflows.start_workflow_instance(
        memory, clock.ctx(), workflows.StartWorkflowInstance(template_id=template.id)
    )
    for step_id in ("a", "b"):
        await workflows.start_step(memory, clock.ctx(), workflows.StartStep(instance_id=started.id, step_id=step_id))
        done = await workflows.complete_step(
            memory, clock.ctx(), workflows.CompleteStep(instance_id=started.id, step_id=step_id, output=step_id)
        )
    instance = await memory.get(WorkflowInstance, started.id)
    assert instance.status == "completed"
    assert done.version == instance.version == 6
