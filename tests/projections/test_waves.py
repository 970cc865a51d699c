"""Waves keep each stream's writes in order and group the rest by statement."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from projections.projection import Write, waves

writes = st.lists(
    st.tuples(st.sampled_from("abc"), st.lists(st.sampled_from(["INSERT", "UPDATE", "DELETE"]), max_size=3)),
    max_size=30,
)


@given(writes)
def test_each_streams_writes_keep_their_order_and_no_wave_holds_a_stream_twice(
    events: list[tuple[str, list[str]]],
) -> None:
    numbered = []
    counter = 0
    for stream, statements in events:
        batch = []
        for sql in statements:
            counter += 1
            batch.append(Write(sql, (stream, counter)))
        numbered.append((stream, batch))
    made = waves(numbered)
    seen: dict[str, list[int]] = {}
    for wave in made:
        streams_in_wave = [args[0] for rows in wave.values() for args in rows]
        assert len(streams_in_wave) == len(set(streams_in_wave))
        for rows in wave.values():
            for stream, number in rows:
                seen.setdefault(stream, []).append(number)
    expected: dict[str, list[int]] = {}
    for stream, batch in numbered:
        expected.setdefault(stream, []).extend(w.args[1] for w in batch)
    assert {k: sorted(v) for k, v in seen.items()} == {k: v for k, v in expected.items() if v}
    for stream, numbers in seen.items():
        assert numbers == sorted(numbers), f"stream {stream} reordered"


def test_many_streams_with_the_same_lifecycle_need_one_round_trip_per_step() -> None:
    made = waves([(f"run{i}", [Write("INSERT", (i,)), Write("UPDATE", (i,))]) for i in range(100)])
    assert [list(wave) for wave in made] == [["INSERT"], ["UPDATE"]]
    assert len(made[0]["INSERT"]) == 100
