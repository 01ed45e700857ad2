# SPDX-License-Identifier: Apache-2.0
"""A seeded simulated link joining two stream machines in a discrete-event loop.

Impairments (:mod:`pilotsock.testing.impairments`, the link emulator's model) come from
``random.Random(seed)``: loss, duplication, reordering (extra delay), corruption (bit flips
caught by the real CRC codec), delay and jitter, plus a bottleneck rate per direction with a
bounded queue (tail drop) and an MTU (larger packets are dropped). Segments travel as real
marshalled packets (``encode_packet``/``decode_packet``). The loop jumps ``now`` to the earlier
of the next arrival and the next machine deadline; it is bounded in steps and simulated time.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from pilotsock.config import TransportConfig
from pilotsock.errors import MalformedFrame
from pilotsock.testing.impairments import ImpairedDirection, Impairments
from pilotsock.transport.connection import ConnEvent, OutSegment, State, StreamConnection
from pilotsock.wire.header import Flag, Packet, Protocol, decode_packet, encode_packet
from pilotsock.wire.sack import is_sack_payload


@dataclass
class LinkStats:
    sent: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    corrupted: int = 0
    bad_crc: int = 0
    queue_dropped: int = 0  # tail drops at the rate-limited bottleneck
    oversize: int = 0  # packets larger than the MTU
    max_sack_blocks: int = 0
    min_cwnd: float = float("inf")
    max_cwnd: float = 0.0
    min_rto: float = float("inf")
    max_rto: float = 0.0


@dataclass
class SimEndpoint:
    """One side: a machine, an application reader switch and what the application received."""

    conn: StreamConnection
    port: int
    received: bytearray = field(default_factory=bytearray)
    events: list[ConnEvent] = field(default_factory=list)
    reading: bool = True
    pending_write: bytearray = field(default_factory=bytearray)
    close_after_write: bool = False
    eof: bool = False
    listening: bool = False  # a closed machine opens on the first SYN, as the daemon's demux does


class SimulatedLink:
    def __init__(self, *, seed: int = 0, loss: float = 0.0, duplicate: float = 0.0, reorder: float = 0.0,
                 corrupt: float = 0.0, delay_seconds: float = 0.01, jitter_seconds: float = 0.0,
                 reorder_extra_seconds: float = 0.02, start: float = 0.0, rate_bytes_per_second: float = 0.0,
                 queue_seconds: float = 0.1, mtu: int = 0) -> None:
        self.random = random.Random(seed)
        self.seed = seed
        self.stats = LinkStats()
        impairments = Impairments(
            delay_seconds=delay_seconds, jitter_seconds=jitter_seconds, loss=loss, duplicate=duplicate,
            reorder=reorder, reorder_extra_seconds=reorder_extra_seconds, corrupt=corrupt,
            rate_bytes_per_second=rate_bytes_per_second, queue_seconds=queue_seconds,
            mtu=mtu,  # counts the encoded packet (header + payload)
        )
        # One generator and one counter table for both directions; each has its own bottleneck.
        self.directions = [ImpairedDirection(impairments, self.random, self.stats, start) for _ in range(2)]
        self.now = start
        self._queue: list[tuple[float, int, int, bytes]] = []
        self._counter = 0
        self.sides: list[SimEndpoint] = []
        self.trace: list[tuple[float, int, OutSegment]] = []  # (time, from side, segment)
        self.record_trace = False

    def attach(self, conn: StreamConnection, port: int) -> SimEndpoint:
        side = SimEndpoint(conn, port)
        self.sides.append(side)
        return side

    # -- transmission -----------------------------------------------------------------------

    def _transmit(self, index: int, segment: OutSegment) -> None:
        src, dst = self.sides[index], self.sides[1 - index]
        if self.record_trace:
            self.trace.append((self.now, index, segment))
        if segment.payload and is_sack_payload(segment.payload):
            self.stats.max_sack_blocks = max(self.stats.max_sack_blocks, segment.payload[4])
        raw = encode_packet(Packet(segment.flags, Protocol.STREAM, 0, index + 1, 0, 2 - index, src.port, dst.port,
                                   segment.seq, segment.ack, segment.window_units, segment.payload))
        self.stats.sent += 1
        for arrival, data in self.directions[index].schedule(self.now, raw):
            self._counter += 1
            heapq.heappush(self._queue, (arrival, self._counter, 1 - index, data))

    def _pump(self, index: int) -> None:
        side = self.sides[index]
        conn = side.conn
        if side.pending_write and conn.send_space:
            with memoryview(side.pending_write) as view:
                taken = conn.write(view[:conn.send_space], self.now)
            del side.pending_write[:taken]
        if side.close_after_write and not side.pending_write:
            conn.shutdown_write(self.now)
        if side.reading and conn.readable_bytes:
            side.received += conn.take_received(now=self.now)
        for segment in conn.segments_to_send(self.now):
            self._transmit(index, segment)
        for event in conn.pop_events():
            side.events.append(event)
            if event is ConnEvent.PEER_EOF:
                side.eof = True
        if side.reading and conn.readable_bytes:
            side.received += conn.take_received(now=self.now)
            for segment in conn.segments_to_send(self.now):
                self._transmit(index, segment)

    # -- the event loop ---------------------------------------------------------------------

    def step(self) -> bool:
        """Advance to the next event. Returns False when nothing is left to happen."""
        stats = self.stats
        for index in range(len(self.sides)):
            self._pump(index)
            conn = self.sides[index].conn
            cwnd, rto = conn.cc.window_bytes, conn.rtt.rto
            stats.min_cwnd = min(stats.min_cwnd, cwnd)
            stats.max_cwnd = max(stats.max_cwnd, cwnd)
            stats.min_rto = min(stats.min_rto, rto)
            stats.max_rto = max(stats.max_rto, rto)
        deadlines: list[tuple[float, int]] = []
        for i, side in enumerate(self.sides):
            deadline = side.conn.next_deadline()
            if deadline is not None:
                deadlines.append((deadline, i))
        next_arrival = self._queue[0][0] if self._queue else None
        next_deadline = min(deadlines)[0] if deadlines else None
        if next_arrival is None and next_deadline is None:
            return False
        if next_deadline is None or (next_arrival is not None and next_arrival <= next_deadline):
            arrival, _, index, data = heapq.heappop(self._queue)
            self.now = max(self.now, arrival)
            try:
                packet = decode_packet(data)
            except MalformedFrame:
                self.stats.bad_crc += 1
                return True
            self.stats.delivered += 1
            side = self.sides[index]
            if side.listening and side.conn.state is State.CLOSED and not side.events:
                if packet.flags & Flag.SYN and not packet.flags & Flag.ACK:
                    side.conn.open_passive(packet.seq, packet.window_units, self.now)
                return True
            side.conn.on_segment(packet.flags, packet.seq, packet.ack, packet.window_units,
                                 bytes(packet.payload), self.now)
        else:
            assert next_deadline is not None
            self.now = max(self.now, next_deadline)
            for d, i in deadlines:
                if d <= self.now:
                    self.sides[i].conn.on_timer(self.now)
        return True

    def run(self, *, until=None, max_steps: int = 1_000_000, max_time: float = 3600.0) -> int:  # type: ignore[no-untyped-def]
        """Step until ``until()`` is true, nothing is left, or a bound is hit. Returns steps."""
        steps = 0
        while steps < max_steps and self.now < max_time:
            if until is not None and until():
                break
            if not self.step():
                break
            steps += 1
        return steps


def connected_pair(link: SimulatedLink, config: TransportConfig | None = None, *,
                   iss_a: int = 0, iss_b: int = 0) -> tuple[SimEndpoint, SimEndpoint]:
    """Two machines on ``link``: side 0 dials side 1 (as a listener would accept it)."""
    config = config or TransportConfig()
    client = StreamConnection(config, iss=iss_a)
    server = StreamConnection(config, iss=iss_b)
    a = link.attach(client, 49152)
    b = link.attach(server, 1000)
    client.open_active(link.now)
    b.listening = True
    return a, b
