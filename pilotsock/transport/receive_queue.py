# SPDX-License-Identifier: Apache-2.0
"""Receive side of a stream: in-order bytes for the application and out-of-order reassembly.

Where it sits: ring 2, owned by a stream connection.

Unlike Go (exact-start matching only), overlaps are trimmed at both ends, so re-segmented
retransmissions are never lost (transport.md §6). Everything buffered (in order or not) counts
against ``capacity_bytes``; data beyond the window edge is dropped (the caller ACKs at once).
The merged out-of-order ranges are kept up to date on every insert (in unwrapped offsets), so a
SACK costs O(blocks · log ranges) however many segments wait behind a hole.
"""

from __future__ import annotations

from collections import deque

from pilotsock.config import WINDOW_UNIT_BYTES
from pilotsock.transport.ranges import RangeSet
from pilotsock.transport.seqnum import SEQ_MASK, seq_diff

MAX_WINDOW_UNITS = 0xFFFF
# The window advertises whole 4096-byte units and may not say 0 (0 reads as "no limit"), so a
# nearly full buffer still advertises one unit; accept that much beyond capacity.
OVERCOMMIT_BYTES = WINDOW_UNIT_BYTES
MAX_CHANGED_BLOCKS = 64  # changed blocks remembered between two SACKs (beyond: the oldest go)


class ReceiveQueue:
    def __init__(self, capacity_bytes: int, initial_seq: int = 0) -> None:
        self.capacity_bytes = capacity_bytes
        self.rcv_nxt = initial_seq & SEQ_MASK
        self._ready: deque[bytes] = deque()
        self.ready_bytes = 0
        self._out_of_order: dict[int, bytes] = {}  # absolute start seq -> payload
        self.out_of_order_bytes = 0
        self._rcv_offset = 0  # unwrapped offset of rcv_nxt (never wraps)
        self._ranges = RangeSet()  # offsets of out-of-order data (merged)
        # Offsets of out-of-order segments received since the last SACK, oldest first, one per
        # block they landed in. The daemon ACKs once per receive batch, not per segment, so
        # "the block of the most recent segment" alone would hide a retransmission that filled
        # a hole low in the window behind the new data of the same batch, and the sender would
        # retransmit it again and again.
        self._changed: list[int] = []
        self._last_reported: list[int] = []  # left-edge offsets of the SACK blocks sent last time
        self.beyond_window = 0  # segments refused because they start past the window edge

    def reset(self, rcv_nxt: int) -> None:
        self.rcv_nxt = rcv_nxt & SEQ_MASK

    @property
    def window_edge_bytes(self) -> int:
        """How far beyond ``rcv_nxt`` data is accepted."""
        return max(0, self.capacity_bytes - self.ready_bytes) + OVERCOMMIT_BYTES

    def advertised_units(self) -> int:
        free = self.capacity_bytes - self.ready_bytes - self.out_of_order_bytes
        return max(1, min(MAX_WINDOW_UNITS, free // WINDOW_UNIT_BYTES))

    def insert(self, seq: int, payload: bytes | memoryview) -> tuple[int, bool]:
        """Add a segment. Returns ``(new in-order bytes, accepted_anything)``.

        ``accepted_anything`` is False for duplicates and for data entirely beyond the window.
        """
        length = len(payload)
        if not length:
            return 0, False
        offset = seq_diff(seq, self.rcv_nxt)
        if offset + length <= 0:
            return 0, False  # entirely old
        if offset < 0:
            payload = payload[-offset:]
            offset = 0
            length = len(payload)
        edge = self.window_edge_bytes
        if offset >= edge:
            self.beyond_window += 1
            return 0, False
        if offset + length > edge:
            payload = payload[: edge - offset]
            length = len(payload)
        if offset > 0:
            start = (self.rcv_nxt + offset) & SEQ_MASK
            position = self._rcv_offset + offset
            existing = self._out_of_order.get(start)
            if existing is not None and len(existing) >= length:
                self._note_changed(position)  # a duplicate: its block is news to the sender
                return 0, False
            if existing is not None:
                self.out_of_order_bytes -= len(existing)
            self._out_of_order[start] = bytes(payload)
            self.out_of_order_bytes += length
            self._ranges.add(position, position + length)
            self._note_changed(position)
            return 0, True
        self._append_ready(payload)
        added = length + self._drain_out_of_order()
        return added, True

    def _append_ready(self, payload: bytes | memoryview) -> None:
        data = bytes(payload)
        self._ready.append(data)
        self.ready_bytes += len(data)
        self.rcv_nxt = (self.rcv_nxt + len(data)) & SEQ_MASK
        self._rcv_offset += len(data)

    def _note_changed(self, position: int) -> None:
        changed = self._changed
        if changed:
            ranges = self._ranges
            if ranges.index_containing(changed[-1]) == ranges.index_containing(position):
                changed[-1] = position  # the same block grew (the common case: new data on top)
                return
            if len(changed) >= MAX_CHANGED_BLOCKS:
                del changed[0]
        changed.append(position)

    @property
    def has_unreported_blocks(self) -> bool:
        """Blocks changed since the last SACK that did not fit in it."""
        return bool(self._changed)

    def _drain_out_of_order(self) -> int:
        """Move out-of-order segments that are now contiguous (trimming overlaps)."""
        if not self._out_of_order:
            return 0
        added = 0
        out_of_order = self._out_of_order
        while out_of_order:
            data = out_of_order.pop(self.rcv_nxt, None)
            if data is not None:  # the common case: an exact continuation
                self.out_of_order_bytes -= len(data)
                self._append_ready(data)
                added += len(data)
                continue
            overlapping = None
            for start in out_of_order:  # rare: a segment that starts below rcv_nxt
                if seq_diff(start, self.rcv_nxt) <= 0:
                    overlapping = start
                    break
            if overlapping is None:
                break
            data = out_of_order.pop(overlapping)
            self.out_of_order_bytes -= len(data)
            offset = seq_diff(overlapping, self.rcv_nxt)
            if offset + len(data) > 0:
                piece = data[-offset:] if offset < 0 else data
                self._append_ready(piece)
                added += len(piece)
        if not self._out_of_order:
            self._ranges.clear()
            self._changed.clear()
        else:
            self._ranges.discard_below(self._rcv_offset)
        return added

    @property
    def has_out_of_order(self) -> bool:
        return bool(self._out_of_order)

    def sack_blocks(self, limit: int = 4) -> list[tuple[int, int]]:
        """Blocks of out-of-order data above ``rcv_nxt``; the most recent first (RFC 2018)."""
        if not self._ranges:
            return []
        ranges = self._ranges.ranges

        # RFC 2018 §4: the block holding the most recent segment first (here: every block
        # changed since the last SACK, newest first), then the blocks reported in the previous
        # ACK, so every block is repeated in several ACKs even with more holes than fit in one;
        # remaining room goes to the highest (newest) other blocks.
        chosen: list[int] = []
        changed = self._changed
        while changed and len(chosen) < limit:
            index = self._ranges.index_containing(changed.pop())
            if index is not None and index not in chosen:
                chosen.append(index)
        if changed:  # what did not fit goes first in the next SACK
            self._changed = [offset for offset in changed
                             if self._ranges.index_containing(offset) not in (*chosen, None)]
        for offset in self._last_reported:
            index = self._ranges.index_containing(offset)
            if index is not None and index not in chosen:
                chosen.append(index)
        index = len(ranges) - 1
        while index >= 0 and len(chosen) < limit:
            if index not in chosen:
                chosen.append(index)
            index -= 1
        chosen = chosen[:limit]
        self._last_reported = [ranges[index][0] for index in chosen]
        base, offset = self.rcv_nxt, self._rcv_offset
        return [((base + ranges[i][0] - offset) & SEQ_MASK, (base + ranges[i][1] - offset) & SEQ_MASK)
                for i in chosen]

    # -- application side ------------------------------------------------------------------

    def peek(self) -> list[bytes]:
        return list(self._ready)

    def take(self, max_bytes: int | None = None) -> bytes:
        """Remove and return up to ``max_bytes`` in-order bytes."""
        if max_bytes is None or max_bytes >= self.ready_bytes:
            data = b"".join(self._ready)
            self._ready.clear()
            self.ready_bytes = 0
            return data
        parts = []
        remaining = max_bytes
        while remaining > 0 and self._ready:
            head = self._ready[0]
            if len(head) <= remaining:
                parts.append(self._ready.popleft())
                remaining -= len(head)
            else:
                parts.append(head[:remaining])
                self._ready[0] = head[remaining:]
                remaining = 0
        data = b"".join(parts)
        self.ready_bytes -= len(data)
        return data

    def consume(self, count: int) -> None:
        """Drop ``count`` in-order bytes the caller has already delivered (after ``peek``)."""
        remaining = count
        while remaining > 0 and self._ready:
            head = self._ready[0]
            if len(head) <= remaining:
                self._ready.popleft()
                remaining -= len(head)
                self.ready_bytes -= len(head)
            else:
                self._ready[0] = head[remaining:]
                self.ready_bytes -= remaining
                remaining = 0


class ReceiveBufferTuner:
    """Receive buffer autotuning (Linux's dynamic right-sizing): once per round trip, if the
    application read more than half the buffer in that round trip, the buffer (so the advertised
    window) grows to twice that, up to ``max_bytes``. It never shrinks."""

    __slots__ = ("queue", "max_bytes", "_copied", "_since")

    def __init__(self, queue: ReceiveQueue, max_bytes: int) -> None:
        self.queue = queue
        self.max_bytes = max_bytes
        self._copied = 0
        self._since: float | None = None

    def on_consumed(self, count: int, now: float, rtt: float) -> None:
        since = self._since
        if since is None:
            self._since = now
            since = now
        self._copied += count
        if now - since < rtt:
            return
        wanted = min(self.max_bytes, 2 * self._copied)
        if wanted > self.queue.capacity_bytes:
            self.queue.capacity_bytes = wanted
        self._copied = 0
        self._since = now
