"""An instance's data subject reaches everything it makes: its runs, their outcomes, its validations (ADR 0008)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import pytest

from adapters.event_store.application import StoreApplication, memory_env
from adapters.event_store.store import EventSourcedStore
from adapters.subject_keys import KeyRing, MemoryKeyTable
from commands import agents, validation, workflows
from commands.orchestrator import Orchestrator
from commands.unit_of_work import new_aggregate_id
from domain.agents.agent_run import AgentRun, ChatMessage
from domain.agents.errors import InvalidRunTransition
from domain.validation.ruleset import Rule
from domain.validation.validation import Validation
from domain.workflows.definition import StepDefinition, WorkflowDefinition
from domain.workflows.instance import WorkflowInstance
from tests.commands.test_orchestrator_machine import DictNames, ListTimers
from tests.strategies import BASE_TIME, Clock

SECRET = "Ada Lovelace of 12 Elm Street"


@pytest.fixture
async def store() -> AsyncIterator[EventSourcedStore]:
    made = EventSourcedStore(StoreApplication(env=memory_env()))
    made.seal_with(KeyRing(MemoryKeyTable(lambda: datetime.now(UTC))))
    yield made
    await made.close()


def stored(store: EventSourcedStore, stream: UUID) -> bytes:
    return b"".join(s.state for s in store.app.recorder.select_events(stream))


async def test_the_runs_and_validations_of_an_instance_about_a_subject_are_sealed_for_it(
    store: EventSourcedStore,
) -> None:
    clock, names = Clock(), DictNames()
    orchestrator = Orchestrator(store=store, names=names, timers=ListTimers(), clock=lambda: BASE_TIME)
    writer = await agents.register_agent(
        store, clock.ctx(), agents.RegisterAgent(name="writer", provider="scripted", model="s")
    )
    names.agents["writer"] = writer.id
    rules = await validation.define_ruleset(
        store,
        clock.ctx(),
        validation.DefineRuleSet(name="q", rules=[Rule(id="r", kind="contains", params={"text": "Ada"})], threshold=1),
    )
    names.rulesets["q"] = rules.id
    definition = WorkflowDefinition(
        inputs=["who"],
        steps=[
            StepDefinition(id="draft", kind="agent", params={"agent": "writer", "prompt": "Greet {{ inputs.who }}"}),
            StepDefinition(id="check", kind="validate", needs=["draft"], params={"ruleset": "q", "target": "draft"}),
        ],
    )
    template = await workflows.register_workflow_template(
        store, clock.ctx(), workflows.RegisterWorkflowTemplate(name="t", definition=definition)
    )
    about = Clock(subject="customer-4711")
    started = await workflows.start_workflow_instance(
        store, about.ctx(), workflows.StartWorkflowInstance(template_id=template.id, inputs={"who": SECRET})
    )
    await orchestrator.reconcile(started.id)
    run_id = new_aggregate_id(clock.ctx(), AgentRun, f"{started.id}/draft/1")
    run = await store.get(AgentRun, run_id)
    assert run.subject == "customer-4711"
    assert run.messages[-1].content == f"Greet {SECRET}"  # the worker gets plaintext to send
    worker = Clock()  # the worker's context names no subject: the run's own stream does
    await agents.start_run_attempt(
        store, worker.ctx("agent-worker"), agents.StartRunAttempt(run_id=run_id, provider="s", model="s")
    )
    await agents.complete_agent_run(
        store,
        worker.ctx("agent-worker"),
        agents.CompleteAgentRun(
            run_id=run_id, output=f"Hello {SECRET}", latency_ms=1, tokens_in=1, tokens_out=1, cost=Decimal(0)
        ),
    )
    await orchestrator.reconcile(started.id)
    check_id = new_aggregate_id(clock.ctx(), Validation, f"{started.id}/check/1")
    check = await store.get(Validation, check_id)
    assert check.subject == "customer-4711"
    assert check.output == f"Hello {SECRET}"
    instance = await store.get(WorkflowInstance, started.id)
    assert instance.steps["draft"].output == f"Hello {SECRET}"
    for stream in (started.id, run_id, check_id):
        assert b"Elm Street" not in stored(store, stream)
        assert b"aiwp:sealed:v1:customer-4711:" in stored(store, stream)
    assert all(e.metadata.subject == "customer-4711" for e in store.events_of(run_id))


async def test_a_run_continuing_a_subjects_conversation_is_about_the_same_subject(store: EventSourcedStore) -> None:
    clock, worker = Clock(), Clock()
    writer = await agents.register_agent(
        store, clock.ctx(), agents.RegisterAgent(name="w", provider="scripted", model="s")
    )
    about = Clock(subject="customer-4711")
    first = await agents.request_agent_run(
        store, about.ctx(), agents.RequestAgentRun(agent_id=writer.id, prompt=f"hi {SECRET}")
    )
    await agents.start_run_attempt(
        store, worker.ctx("agent-worker"), agents.StartRunAttempt(run_id=first.id, provider="s", model="s")
    )
    await agents.complete_agent_run(
        store,
        worker.ctx("agent-worker"),
        agents.CompleteAgentRun(run_id=first.id, output="ok", latency_ms=1, tokens_in=1, tokens_out=1, cost=Decimal(0)),
    )
    # No subject named: the continuation inherits the earlier run's, so its copy of the messages is sealed too.
    second = await agents.request_agent_run(
        store, clock.ctx(), agents.RequestAgentRun(agent_id=writer.id, prompt="more", context_id=first.id)
    )
    assert b"Elm Street" not in stored(store, second.id)
    assert (await store.get(AgentRun, second.id)).subject == "customer-4711"
    other = Clock(subject="customer-9")
    with pytest.raises(InvalidRunTransition, match="another data subject"):
        await agents.request_agent_run(
            store, other.ctx(), agents.RequestAgentRun(agent_id=writer.id, prompt="more", context_id=first.id)
        )


async def test_a_sealed_string_of_another_subject_is_not_opened_by_a_load(store: EventSourcedStore) -> None:
    writer = await agents.register_agent(
        store, Clock().ctx(), agents.RegisterAgent(name="w", provider="scripted", model="s")
    )
    first = await agents.request_agent_run(
        store, Clock(subject="customer-4711").ctx(), agents.RequestAgentRun(agent_id=writer.id, prompt=SECRET)
    )
    token = next(
        m.content for m in (await raw_messages(store, first.id)) if "aiwp:sealed:v1:customer-4711" in m.content
    )
    pasted = await agents.request_agent_run(
        store, Clock(subject="customer-9").ctx(), agents.RequestAgentRun(agent_id=writer.id, prompt=token)
    )
    loaded = await store.get(AgentRun, pasted.id)
    assert loaded.messages[-1].content == token  # left sealed: it is customer-4711's data, not customer-9's
    assert SECRET not in loaded.messages[-1].content


async def raw_messages(store: EventSourcedStore, run_id: UUID) -> list[Any]:
    """The run's messages as stored: sealed strings still sealed."""
    requested = store.app.recorder.select_events(run_id)[0]
    state = msgspec.json.decode(requested.state)
    return [msgspec.convert(m, ChatMessage) for m in state["messages"]]
