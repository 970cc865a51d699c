"""Envelopes as the relay would publish them, straight from the store (for driving projectors in tests)."""

from __future__ import annotations

from adapters.relay import Chains
from domain.envelope import Envelope
from ops.bootstrap import Platform


async def envelopes_of(platform: Platform, after: int) -> list[Envelope]:
    """From position `after` on, chained as by a relay that starts there (after 0: one that knows nothing)."""
    async with platform.pool.acquire() as conn:
        batch = await platform.reader.read(conn, after, 1_000_000)
    chains = Chains(platform.filters(), after)
    return [chains.envelope(recorded) for recorded in batch.events]
