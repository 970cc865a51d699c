"""Every event round-trips through the store's encoding, with and without the AES cipher."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing.cryptography import AESCipher
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent, Transcoder
from eventsourcing.utils import Environment
from hypothesis import find, given, settings

from adapters.event_store.mapper import MsgspecMapper
from adapters.subject_keys import KeyRing, MemoryKeyTable
from domain.aggregate import Aggregate
from domain.events import DomainEvent, Snapshot
from tests.strategies import HISTORIES, History, any_history


class NoTranscoder(Transcoder):
    def encode(self, obj: Any) -> bytes:
        raise AssertionError("the msgspec mapper never calls the transcoder")

    def decode(self, data: bytes) -> Any:
        raise AssertionError("the msgspec mapper never calls the transcoder")


KEY = base64.b64encode(bytes(range(32))).decode()
PLAIN = MsgspecMapper(transcoder=NoTranscoder())
CIPHERED = MsgspecMapper(transcoder=NoTranscoder(), cipher=AESCipher(Environment("aiwp", {"CIPHER_KEY": KEY})))
# The histories' data subject (tests.strategies.saga_scenarios): its events are sealed, and revealed on load.
KEYRING = KeyRing(MemoryKeyTable(lambda: datetime.now(UTC)))
asyncio.run(KEYRING.ensure("tenant-a", "customer-4711"))
PLAIN.keyring = CIPHERED.keyring = KEYRING


def round_tripped(mapper: MsgspecMapper, event: Any) -> Any:
    """Stored then loaded as the write side loads it (sealed personal data revealed)."""
    stored = mapper.to_stored_event(event)
    plain = mapper.plaintext(stored.topic, stored.state, stored.originator_id, stored.originator_version)
    return mapper.decode_revealed(stored.topic, plain, stored.originator_id, stored.originator_version)


def all_event_classes() -> set[type[DomainEvent]]:
    found: set[type[DomainEvent]] = set()
    pending = [DomainEvent]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.add(sub)
            pending.append(sub)
    return found


@pytest.mark.parametrize("kind", list(HISTORIES), ids=lambda kind: kind.__name__)
def test_every_event_of_every_class_round_trips(kind: type[Aggregate]) -> None:
    seen: set[type[DomainEvent]] = set()

    @settings(max_examples=300, derandomize=True, database=None)
    @given(HISTORIES[kind])
    def round_trip(history: History) -> None:
        for event in history.events:
            seen.add(type(event))
            for mapper in (PLAIN, CIPHERED):
                if event.metadata.subject:
                    assert round_tripped(mapper, event) == event
                else:
                    assert mapper.to_domain_event(mapper.to_stored_event(event)) == event

    round_trip()
    # The property covers a class only if some history emitted it: each class of the context must show up.
    expected = {cls for cls in all_event_classes() if cls.__module__ == kind.__module__}
    assert expected - seen == set()


@given(any_history)
def test_snapshots_round_trip(history: History) -> None:
    snapshot = Snapshot.take(history.aggregate)
    assert PLAIN.to_domain_event(PLAIN.to_stored_event(snapshot)) == snapshot


def test_the_cipher_hides_the_payload_and_a_wrong_key_cannot_read_it() -> None:
    history = find(any_history, lambda h: len(h.events) > 0)
    event = history.events[0]
    stored = CIPHERED.to_stored_event(event)
    assert event.metadata.actor.encode() not in stored.state
    other = MsgspecMapper(
        transcoder=NoTranscoder(),
        cipher=AESCipher(Environment("aiwp", {"CIPHER_KEY": base64.b64encode(bytes(32)).decode()})),
    )
    with pytest.raises(MapperDeserialisationError):
        other.to_domain_event(stored)


def test_a_corrupt_payload_is_reported_with_its_stream_and_version() -> None:
    history = find(any_history, lambda h: len(h.events) > 0)
    stored = PLAIN.to_stored_event(history.events[0])
    broken = StoredEvent(stored.originator_id, stored.originator_version, stored.topic, b"{not json")
    with pytest.raises(MapperDeserialisationError, match=f"{stored.originator_id} v1"):
        PLAIN.to_domain_event(broken)
