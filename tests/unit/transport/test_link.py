"""The simulated link's bottleneck (rate, bounded queue with tail drop) and MTU."""

from __future__ import annotations

import random

from pilotsock.config import TransportConfig
from pilotsock.testing.link import SimulatedLink, connected_pair
from pilotsock.transport.connection import State

RATE = 2_000_000  # bytes per second


def test_a_rate_limited_link_carries_at_most_its_rate_and_tail_drops_the_excess() -> None:
    link = SimulatedLink(seed=5, delay_seconds=0.02, rate_bytes_per_second=RATE, queue_seconds=0.05)
    a, b = connected_pair(link, TransportConfig(congestion_control="newreno"))
    data = random.Random(5).randbytes(3_000_000)
    a.pending_write += data
    link.run(until=lambda: len(b.received) >= len(data), max_steps=500_000, max_time=60)
    assert bytes(b.received) == data
    wire_bytes = a.conn.stats.segments_sent * 34 + len(data)  # at least: headers + payload once
    assert link.now >= wire_bytes / RATE  # the link never ran faster than its rate
    assert link.now < 3 * len(data) / RATE  # and the transport kept it reasonably busy
    assert link.stats.queue_dropped > 0  # slow start overflowed the 50 ms queue...
    assert a.conn.stats.retransmissions >= link.stats.queue_dropped - link.stats.lost  # ...and recovered


def test_packets_above_the_mtu_are_dropped_and_counted() -> None:
    link = SimulatedLink(seed=6, delay_seconds=0.01, mtu=600)
    a, b = connected_pair(link, TransportConfig(mss=1000))
    link.run(until=lambda: a.conn.state is State.ESTABLISHED, max_steps=1000)
    a.pending_write += b"m" * 5000
    link.run(max_steps=200, max_time=link.now + 1)
    assert link.stats.oversize > 0 and not b.received  # 1000-byte segments never fit
