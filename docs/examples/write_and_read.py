"""Write an aggregate through a command handler, then read it back at two versions (in-memory store).

Run it: .venv/bin/python docs/examples/write_and_read.py
"""

import asyncio
from datetime import UTC, datetime
from uuid import uuid4

from adapters.event_store.application import StoreApplication, memory_env
from adapters.event_store.store import EventSourcedStore
from commands.agents import ReconfigureAgent, RegisterAgent, reconfigure_agent, register_agent
from domain.agents.agent import Agent
from domain.aggregate import CommandContext


def context() -> CommandContext:
    correlation = uuid4()
    return CommandContext(
        at=datetime.now(UTC), tenant_id="acme", actor="ada", correlation_id=correlation, causation_id=correlation
    )


async def main() -> None:
    store = EventSourcedStore(StoreApplication(env=memory_env()))
    created = await register_agent(
        store, context(), RegisterAgent(name="writer", provider="scripted", model="m1", idempotency_key="writer-1")
    )
    changed = await reconfigure_agent(
        store,
        context(),
        ReconfigureAgent(
            agent_id=created.id,
            provider="openai",
            model="gpt-4o-mini",
            system_prompt="Be brief.",
            temperature=0.2,
            max_tokens=512,
            expected_version=1,
        ),
    )
    now = await store.get(Agent, created.id)
    then = await store.get(Agent, created.id, version=1)
    print(f"agent {created.id}: version {changed.version} at position {changed.position}")
    print(f"now: {now.provider}/{now.model}; at version 1: {then.provider}/{then.model}")
    for event in store.events_of(created.id):
        print(event.originator_version, type(event).__name__, event.metadata.actor)
    await store.close()


if __name__ == "__main__":
    asyncio.run(main())
