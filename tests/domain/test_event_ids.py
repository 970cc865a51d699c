"""Event ids are uuid5 of (stream, version): the fast path makes exactly what `uuid.uuid5` makes."""

from __future__ import annotations

import pickle
import uuid
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from domain.envelope import EVENT_ID_NAMESPACE, event_id_of


@given(st.uuids(), st.integers(min_value=0, max_value=2**40))
def test_an_event_id_is_the_uuid5_of_its_stream_and_version(stream_id: UUID, version: int) -> None:
    made = event_id_of(stream_id, version)
    expected = uuid.uuid5(EVENT_ID_NAMESPACE, f"{stream_id}/{version}")
    assert made == expected
    assert (str(made), made.version, made.variant, hash(made)) == (
        str(expected),
        5,
        uuid.RFC_4122,
        hash(expected),
    )
    assert pickle.loads(pickle.dumps(made)) == expected
