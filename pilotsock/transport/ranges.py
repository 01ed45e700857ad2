# SPDX-License-Identifier: Apache-2.0
"""A set of merged half-open integer ranges, for SACK scoreboards on both sides of a stream.

Where it sits: ring 2 helper. Offsets are unwrapped stream offsets (plain ints that never wrap),
so ranges sort and bisect directly; callers convert to and from 32-bit sequence numbers.
Adding a range costs O(log n) plus the ranges it absorbs; touching ranges merge.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right


def _start(item: list[int]) -> int:
    return item[0]


class RangeSet:
    def __init__(self) -> None:
        self.ranges: list[list[int]] = []  # sorted, disjoint, non-touching [start, end)

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __len__(self) -> int:
        return len(self.ranges)

    def clear(self) -> None:
        self.ranges.clear()

    def add(self, lo: int, hi: int) -> None:
        ranges = self.ranges
        index = bisect_left(ranges, lo, key=_start)
        if index > 0 and ranges[index - 1][1] >= lo:  # touches the range before
            index -= 1
            lo = ranges[index][0]
        stop = index
        while stop < len(ranges) and ranges[stop][0] <= hi:
            hi = max(hi, ranges[stop][1])
            stop += 1
        ranges[index:stop] = [[lo, hi]]

    def discard_below(self, offset: int) -> None:
        """Forget everything below ``offset``."""
        ranges = self.ranges
        drop = 0
        while drop < len(ranges) and ranges[drop][1] <= offset:
            drop += 1
        del ranges[:drop]
        if ranges and ranges[0][0] < offset:
            ranges[0][0] = offset

    def index_containing(self, offset: int) -> int | None:
        ranges = self.ranges
        index = bisect_right(ranges, offset, key=_start) - 1
        return index if index >= 0 and offset < ranges[index][1] else None

    def uncovered(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The parts of [lo, hi) that no range covers, in order."""
        ranges = self.ranges
        pieces = []
        index = max(0, bisect_right(ranges, lo, key=_start) - 1)
        cursor = lo
        while index < len(ranges) and ranges[index][0] < hi:
            r_lo, r_hi = ranges[index]
            if r_lo > cursor:
                pieces.append((cursor, r_lo))
            cursor = max(cursor, r_hi)
            index += 1
        if cursor < hi:
            pieces.append((cursor, hi))
        return pieces
