"""The one door event data passes through before `aiwp trace` or `aiwp whatif` shows it or sends it to an LLM.

Each command makes one `Disclosure` for the log it reads, and every event it reads goes through
`Disclosure.event` right after decoding (an export's rows through `Disclosure.disclose`): no other code path
of these commands sees event data that did not pass through `disclose`, where `reveal` turns sealed strings
(`aiwp:sealed:v1:...`, ADR 0008) into their plaintext, or `[erased]`, with one key ring per command.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from adapters.subject_keys import KeyRing, PostgresKeyTable, reveal
from domain.events import DomainEvent
from ops.inspection import Log

E = TypeVar("E", bound=DomainEvent)
ERASED = "[erased]"  # what an erased (shredded) string reads as once revealed


class Disclosure:
    """Event data as the forensic commands may show or send it, for one command over one log."""

    def __init__(self, log: Log) -> None:
        self.log = log  # where the data subjects' keys are, for `reveal`
        self._keyring: KeyRing | None = None
        self._looked = False

    async def disclose(self, value: Any, tenant_id: str) -> Any:
        """A JSON-like value (an event as `msgspec.to_builtins` makes it) with its sealed strings revealed."""
        keyring = await self._keys()
        return value if keyring is None else await reveal(value, tenant_id, keyring)

    async def _keys(self) -> KeyRing | None:
        """The command's key ring (None for a store older than the key table); keys live as long as the command."""
        if not self._looked:
            self._looked = True
            async with self.log.pool.acquire() as conn:
                if await conn.fetchval("SELECT to_regclass('subject_keys')") is not None:
                    self._keyring = KeyRing(PostgresKeyTable(self.log.pool), ttl=3600.0)
        return self._keyring

    async def event(self, event: E) -> E:
        """The same event, its data (metadata included) passed through `disclose`."""
        data = await self.disclose(msgspec.to_builtins(event), event.metadata.tenant_id)
        return msgspec.convert(data, type(event), strict=False)
