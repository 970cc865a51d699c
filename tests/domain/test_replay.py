"""Replaying the events of any history rebuilds exactly the live state."""

from __future__ import annotations

from hypothesis import given, settings

from domain.aggregate import Aggregate
from domain.events import Snapshot
from tests.strategies import HISTORIES, History, any_history


@settings(max_examples=300)
@given(any_history)
def test_replaying_any_valid_history_reproduces_the_live_state(history: History) -> None:
    kind = type(history.aggregate)
    assert kind.project(history.events) == history.aggregate


@given(any_history)
def test_versions_are_contiguous_from_one(history: History) -> None:
    assert [event.originator_version for event in history.events] == list(range(1, len(history.events) + 1))
    assert history.aggregate.version == len(history.events)


@given(any_history)
def test_a_snapshot_taken_at_any_point_continues_to_the_same_state(history: History) -> None:
    kind: type[Aggregate] = type(history.aggregate)
    for cut in range(1, len(history.events) + 1):
        middle = kind.project(history.events[:cut])
        snapshot = Snapshot.take(middle)
        assert kind.project([snapshot, *history.events[cut:]]) == history.aggregate


def test_every_aggregate_has_a_history_strategy() -> None:
    assert set(HISTORIES) == set(Aggregate.__subclasses__())
