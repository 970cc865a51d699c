"""Envelopes as the relay would publish them, straight from the store (for driving projectors in tests)."""

from __future__ import annotations

from adapters.relay import envelope_of
from domain.catalog import context_of
from domain.envelope import Envelope
from ops.bootstrap import Platform


async def envelopes_of(platform: Platform, after: int) -> list[Envelope]:
    async with platform.pool.acquire() as conn:
        batch = await platform.reader.read(conn, after, 1_000_000)
    previous, by_context, made = after, dict[str, int](), list[Envelope]()
    for recorded in batch.events:
        context = context_of(type(recorded.event))
        made.append(envelope_of(recorded, previous, by_context.get(context, 0)))
        previous = by_context[context] = recorded.position
    return made
