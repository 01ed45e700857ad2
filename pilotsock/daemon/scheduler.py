# SPDX-License-Identifier: Apache-2.0
"""One timer for all machines: a heap of exact deadlines behind a single asyncio timer handle.

Where it sits: ring 3. Machines report ``next_deadline()``; the daemon calls ``schedule(key,
deadline)`` after every flush; when a deadline passes, ``on_due(key, now)`` runs. Stale heap
entries are skipped lazily (no 100 ms polling tick, unlike Go), and the heap is rebuilt from
the live deadlines once stale entries outnumber them: a stale entry holds its key (a stream, with
its whole machine) until its deadline, and keepalive deadlines are 30 s away.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Callable, Hashable

_COMPACT_SLACK = 256  # stale heap entries tolerated beyond the live ones before a rebuild


class Scheduler:
    def __init__(self, loop: asyncio.AbstractEventLoop, on_due: Callable[[Hashable, float], None]) -> None:
        self._loop = loop
        self._on_due = on_due
        self._heap: list[tuple[float, int, Hashable]] = []
        self._deadlines: dict[Hashable, float] = {}
        self._counter = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None

    def __len__(self) -> int:
        return len(self._deadlines)

    def schedule(self, key: Hashable, deadline: float | None) -> None:
        current = self._deadlines.get(key)
        if deadline == current:
            return
        if deadline is None:
            del self._deadlines[key]
        else:
            self._deadlines[key] = deadline
        if len(self._heap) > 2 * len(self._deadlines) + _COMPACT_SLACK:
            self._compact()
        if deadline is not None:
            heapq.heappush(self._heap, (deadline, next(self._counter), key))
            if self._armed_at is None or deadline < self._armed_at:
                self._arm()

    def cancel(self, key: Hashable) -> None:
        self.schedule(key, None)

    def _compact(self) -> None:
        """Drop stale entries (and the keys they keep alive): O(live), at most once per as many pushes."""
        counter = self._counter
        heap = [(deadline, next(counter), key) for key, deadline in self._deadlines.items()]
        heapq.heapify(heap)
        self._heap = heap

    def _arm(self) -> None:
        heap = self._heap
        while heap and self._deadlines.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)
        if not heap:
            if self._handle is not None:
                self._handle.cancel()
            self._handle = None
            self._armed_at = None
            return
        earliest = heap[0][0]
        if self._armed_at == earliest and self._handle is not None:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = earliest
        self._handle = self._loop.call_at(earliest, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = None
        now = self._loop.time()
        heap = self._heap
        due = []
        while heap and heap[0][0] <= now:
            deadline, _, key = heapq.heappop(heap)
            if self._deadlines.get(key) == deadline:
                del self._deadlines[key]
                due.append(key)
        for key in due:
            self._on_due(key, now)
        self._arm()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._heap.clear()
        self._deadlines.clear()
