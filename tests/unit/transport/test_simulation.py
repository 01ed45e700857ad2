"""Seeded simulated links: exact delivery in both directions under loss, reordering,
duplication and corruption; bounded time; no endless exchange after close."""

import hashlib
import random

import pytest

from pilotsock.config import TransportConfig
from pilotsock.testing.link import SimulatedLink, connected_pair
from pilotsock.transport.connection import State

CASES = [(seed, loss) for loss in (0.0, 0.01, 0.05, 0.1) for seed in range(12)]


@pytest.mark.parametrize(("seed", "loss"), CASES)
def test_bidirectional_transfer_is_exact(seed: int, loss: float) -> None:
    link = SimulatedLink(seed=seed, loss=loss, duplicate=0.02, reorder=0.05, corrupt=0.01,
                         delay_seconds=0.02, jitter_seconds=0.005)
    a, b = connected_pair(link, TransportConfig())
    rng = random.Random(seed)
    up, down = rng.randbytes(200_000), rng.randbytes(150_000)
    a.pending_write += up
    a.close_after_write = True
    b.pending_write += down
    b.close_after_write = True
    link.run(until=lambda: a.conn.is_closed and b.conn.is_closed, max_steps=400_000, max_time=600.0)
    assert hashlib.sha256(b.received).digest() == hashlib.sha256(up).digest(), f"seed {seed}"
    assert hashlib.sha256(a.received).digest() == hashlib.sha256(down).digest(), f"seed {seed}"
    assert a.conn.state is State.CLOSED and b.conn.state is State.CLOSED, f"seed {seed}"
    for side in (a, b):
        assert 0.2 <= side.conn.rtt.rto <= 10.0
        assert side.conn.cc.window_bytes >= 1400
    # After both are closed nothing is left to send: no FIN storm.
    sent_before = link.stats.sent
    link.run(max_steps=1000, max_time=link.now + 30)
    assert link.stats.sent - sent_before == 0


def test_slow_reader_never_deadlocks() -> None:
    link = SimulatedLink(seed=3, delay_seconds=0.01)
    config = TransportConfig(receive_buffer_bytes=64 * 1024)
    a, b = connected_pair(link, config)
    payload = random.Random(3).randbytes(600_000)
    a.pending_write += payload
    a.close_after_write = True
    b.reading = False
    link.run(until=lambda: link.now > 3.0, max_steps=200_000)
    assert a.conn.state is not State.CLOSED  # blocked, not given up
    assert len(b.received) == 0
    b.reading = True
    link.run(until=lambda: len(b.received) == len(payload) and b.eof, max_steps=200_000, max_time=200.0)
    assert bytes(b.received) == payload
