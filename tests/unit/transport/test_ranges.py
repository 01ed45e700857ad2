"""RangeSet and the SACK scoreboards built on it, against brute-force models."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pilotsock.transport.ranges import RangeSet
from pilotsock.transport.receive_queue import ReceiveQueue
from pilotsock.transport.send_queue import SendQueue, SentSegment

spans = st.tuples(st.integers(0, 200), st.integers(1, 40)).map(lambda t: (t[0], t[0] + t[1]))


def covered(ranges: RangeSet) -> set[int]:
    return {x for lo, hi in ranges.ranges for x in range(lo, hi)}


@given(st.lists(spans, max_size=30), st.integers(0, 250), spans)
@settings(max_examples=300)
def test_range_set_matches_a_set_of_integers(added: list[tuple[int, int]], floor: int,
                                              query: tuple[int, int]) -> None:
    ranges = RangeSet()
    model: set[int] = set()
    for lo, hi in added:
        ranges.add(lo, hi)
        model |= set(range(lo, hi))
    assert covered(ranges) == model
    flat = [x for r in ranges.ranges for x in r]
    assert flat == sorted(flat) and all(a[1] < b[0] for a, b in zip(ranges.ranges, ranges.ranges[1:]))
    lo, hi = query
    assert {x for a, b in ranges.uncovered(lo, hi) for x in range(a, b)} == set(range(lo, hi)) - model
    for x in (lo, hi, floor):
        index = ranges.index_containing(x)
        assert (index is not None) == (x in model)
    ranges.discard_below(floor)
    assert covered(ranges) == {x for x in model if x >= floor}


@given(st.integers(0, 2**32 - 1), st.lists(st.tuples(st.integers(0, 59), st.integers(1, 8)), max_size=25))
@settings(max_examples=200)
def test_apply_sack_marks_exactly_the_segments_inside_blocks(isn: int, blocks: list[tuple[int, int]]) -> None:
    """Segments of 100 bytes from a random (possibly wrapping) ISN; SACK blocks in segment units."""
    queue = SendQueue(1 << 20)
    segments = []
    for index in range(60):
        segment = SentSegment((isn + 100 * index) & 0xFFFFFFFF, b"x" * 100, 0x10, 100, float(index))
        queue.on_sent(segment)
        segments.append(segment)
    expected: set[int] = set()
    total = 0
    for first, count in blocks:
        left = (isn + 100 * first) & 0xFFFFFFFF
        right = (isn + 100 * min(60, first + count)) & 0xFFFFFFFF
        total += queue.apply_sack([(left, right)], isn, 100.0)
        expected |= set(range(first, min(60, first + count)))
    assert {i for i, s in enumerate(segments) if s.sacked} == expected
    assert total == queue.sacked_bytes == 100 * len(expected)
    assert queue.pipe_bytes == 100 * (60 - len(expected))


def test_receive_queue_reports_every_changed_block_newest_first() -> None:
    """One ACK per receive batch: every block that changed since the last SACK is reported
    (newest first), spilling into a second SACK when more than four changed."""
    queue = ReceiveQueue(1 << 20, initial_seq=0xFFFFFF00)  # wraps inside the test
    base = 0xFFFFFF00

    def block(first: int, last: int) -> tuple[int, int]:
        return (base + 100 * first) & 0xFFFFFFFF, (base + 100 * (last + 1)) & 0xFFFFFFFF

    for hole in range(6):  # six holes in one batch: segments 2k+1 arrive, 2k are missing
        queue.insert((base + 100 * (2 * hole + 1)) & 0xFFFFFFFF, b"y" * 100)
    first = queue.sack_blocks()
    assert first == [block(11, 11), block(9, 9), block(7, 7), block(5, 5)]
    assert queue.has_unreported_blocks
    second = queue.sack_blocks()
    assert second[:2] == [block(3, 3), block(1, 1)]  # the two that did not fit, then rotation
    assert set(second[2:]) <= set(first)
    assert not queue.has_unreported_blocks
    third = queue.sack_blocks()  # nothing new: blocks reported last time come first
    assert third[:2] == second[:2]
    queue.insert((base + 200) & 0xFFFFFFFF, b"y" * 100)  # fills hole 1: blocks 1 and 2 merge
    queue.insert((base + 1300) & 0xFFFFFFFF, b"y" * 100)  # new data on top in the same batch
    fourth = queue.sack_blocks()
    assert fourth[:2] == [block(13, 13), block(1, 3)]  # the low merge is not hidden by new data
    queue.insert(base, b"z" * 100)  # fills hole 0: rcv_nxt jumps over the merged block
    assert queue.rcv_nxt == (base + 400) & 0xFFFFFFFF
    assert all(((left - queue.rcv_nxt) & 0xFFFFFFFF) < 0x80000000 for left, _ in queue.sack_blocks())


def test_send_queue_bookkeeping_stays_bounded_by_the_flight() -> None:
    """Acknowledged segments leave every internal index (a leak here once cost 30% on loopback)."""
    queue = SendQueue(1 << 30)
    for round_ in range(100):
        for index in range(100):
            seq = (round_ * 100 + index) * 10
            queue.on_sent(SentSegment(seq, b"p" * 10, 0x10, 10, float(round_)))
        if round_ % 10 == 0:  # some losses, repaired
            queue.mark_lost(queue.segments[0])
            segment = queue.first_lost()
            assert segment is not None
            queue.on_retransmitted(segment, float(round_))
        queue.acknowledge(((round_ + 1) * 100 * 10) & 0xFFFFFFFF, float(round_) + 0.5)
        assert queue.first_lost() is None
    assert not queue.segments and queue.pipe_bytes == 0
    assert len(queue._by_transmission) == 0 and len(queue._lost_heap) == 0
