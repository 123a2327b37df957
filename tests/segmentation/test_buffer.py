"""The ring of rows a stream holds: any sequence of appends, drops and truncations reads back as
a plain list would, whether the rows wrap around the ring's end or not."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerseg.runtime.buffer import RowBuffer

steps = st.lists(st.tuples(st.sampled_from(["append", "drop", "truncate"]),
                           st.integers(0, 40)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(steps=steps, capacity=st.integers(1, 16))
def test_ring_reads_back_as_a_list(steps, capacity):
    ring, rows, first = RowBuffer((2,), capacity), [], 0  # ``rows`` holds [first, first + len)
    counter = 0
    for op, n in steps:
        if op == "append":
            new = np.arange(counter, counter + n, dtype=np.float32).repeat(2).reshape(-1, 2)
            counter += n
            ring.append(new)
            rows += list(new)
        elif op == "drop":
            at = first + min(n, len(rows))
            ring.drop_before(at)
            rows, first = rows[at - first:], at
        else:
            stop = first + max(0, len(rows) - n)
            ring.truncate(stop)
            rows = rows[:stop - first]
        assert (ring.start, ring.stop) == (first, first + len(rows))
        expected = np.array(rows, dtype=np.float32).reshape(-1, 2)
        np.testing.assert_array_equal(np.concatenate(ring.segments(first, len(rows)) or
                                                     [np.zeros((0, 2), np.float32)]), expected)
        np.testing.assert_array_equal(ring.take(first, len(rows) + 3)[:len(rows)], expected)
        assert not ring.take(first, len(rows) + 3)[len(rows):].any()  # zeros past the end


def test_views_and_copies():
    ring = RowBuffer((), 8)
    ring.append(np.arange(6, dtype=np.float32))
    ring.drop_before(4)
    ring.append(np.arange(6, 10, dtype=np.float32))  # rows 4..9 sit at slots 4..7, 0..1
    assert [len(s) for s in ring.segments(4, 6)] == [4, 2]
    assert np.shares_memory(ring.take(4, 4), ring.data)  # unwrapped: a view
    wrapped = ring.take(6, 4)
    assert not np.shares_memory(wrapped, ring.data) and list(wrapped) == [6, 7, 8, 9]
    with pytest.raises(IndexError, match="not all held"):
        ring.segments(3, 2)
    with pytest.raises(IndexError, match="were dropped"):
        ring.take(2, 1)


def test_room_grows_by_a_quarter_only_when_needed():
    ring = RowBuffer((), 8)
    for _ in range(100):  # a steady stream: 3 in, 3 out, never more than 8 held
        ring.append(np.zeros(3, np.float32))
        ring.drop_before(ring.stop - 5)
    assert len(ring.data) == 8
    ring.append(np.zeros(10, np.float32))  # 15 held
    assert len(ring.data) == 15
    ring.append(np.zeros(1, np.float32))
    assert len(ring.data) == 18  # 1.25x, so that growing row by row stays linear
