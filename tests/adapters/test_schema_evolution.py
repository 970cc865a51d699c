"""Schema evolution: an event stored by version 1 of its class still loads after the code moves to version 2."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.utils import clear_topic_cache

from tests.conftest import postgres_store
from tests.strategies import Clock

pytestmark = pytest.mark.integration

V1 = """
from domain.events import DomainEvent

class TicketFiled(DomainEvent, frozen=True, kw_only=True):
    subject: str
"""

V2 = """
from typing import Any, ClassVar
from domain.events import DomainEvent

class TicketFiled(DomainEvent, frozen=True, kw_only=True):
    class_version: ClassVar[int] = 2
    subject: str
    priority: str

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["priority"] = "urgent" if "outage" in state["subject"] else "normal"
"""


@pytest.fixture
def evolving_module(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    yield tmp_path / "evolving_events.py"
    sys.path.remove(str(tmp_path))
    sys.modules.pop("evolving_events", None)
    clear_topic_cache()


def load_version(path: Path, source: str) -> Any:
    path.write_text(textwrap.dedent(source))
    sys.modules.pop("evolving_events", None)
    clear_topic_cache()
    importlib.invalidate_caches()
    return importlib.import_module("evolving_events").TicketFiled


async def test_a_v1_event_loads_through_the_upcaster_after_the_code_moves_to_v2(
    database_url: str, pg_schema: str, evolving_module: Path
) -> None:
    ticket_filed_v1 = load_version(evolving_module, V1)
    clock = Clock()
    ctx = clock.ctx()
    stream = uuid4()
    old = ticket_filed_v1(
        originator_id=stream, originator_version=1, timestamp=ctx.at, metadata=ctx.metadata(), subject="outage in eu"
    )
    writer = postgres_store(database_url, pg_schema)
    try:
        writer.app.events.put([old])
    finally:
        await writer.close()

    ticket_filed_v2 = load_version(evolving_module, V2)
    reader = postgres_store(database_url, pg_schema)
    try:
        [loaded] = reader.events_of(stream)
        assert type(loaded) is ticket_filed_v2
        assert (loaded.subject, loaded.priority) == ("outage in eu", "urgent")
        assert loaded.metadata == old.metadata
        # A v2 event is stored with its version and read back without upcasting.
        fresh = ticket_filed_v2(
            originator_id=stream,
            originator_version=2,
            timestamp=ctx.at,
            metadata=ctx.metadata(),
            subject="outage again",
            priority="low",
        )
        reader.app.events.put([fresh])
        assert reader.events_of(stream)[1] == fresh
    finally:
        await reader.close()
