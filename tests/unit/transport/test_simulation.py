"""Seeded simulated links: exact delivery in both directions under loss, reordering,
duplication and corruption; bounded time; cwnd/RTO within bounds; at most 4 SACK blocks per ACK;
no deadlock and no endless exchange after close (issue "Reliable stream transport")."""

import hashlib
import os
import random

import pytest

from pilotsock.config import TransportConfig
from pilotsock.testing.link import SimulatedLink, connected_pair
from pilotsock.transport.connection import State

SEEDS = int(os.environ.get("PILOTSOCK_SIM_SEEDS", "200"))
LOSSES = (0.0, 0.01, 0.05, 0.10, 0.30)
TRANSFER_BYTES = 1_000_000
# Bounded simulated time per run, generous for 30% loss (median ~70 s, incl. 10 s TIME_WAIT).
MAX_SIMULATED_SECONDS = {0.0: 60, 0.01: 60, 0.05: 90, 0.10: 120, 0.30: 900}


@pytest.mark.parametrize("loss", LOSSES)
def test_megabyte_each_way_is_exact_for_every_seed(loss: float) -> None:
    config = TransportConfig()
    failures = []
    for seed in range(SEEDS):
        link = SimulatedLink(seed=seed, loss=loss, duplicate=0.02, reorder=0.05, corrupt=0.01,
                             delay_seconds=0.02, jitter_seconds=0.005)
        a, b = connected_pair(link, config)
        rng = random.Random(seed)
        up, down = rng.randbytes(TRANSFER_BYTES), rng.randbytes(TRANSFER_BYTES)
        a.pending_write += up
        a.close_after_write = True
        b.pending_write += down
        b.close_after_write = True
        link.run(until=lambda: a.conn.is_closed and b.conn.is_closed, max_steps=2_000_000,
                 max_time=MAX_SIMULATED_SECONDS[loss])
        problems = []
        if hashlib.sha256(b.received).digest() != hashlib.sha256(up).digest():
            problems.append(f"up {len(b.received)}/{len(up)}")
        if hashlib.sha256(a.received).digest() != hashlib.sha256(down).digest():
            problems.append(f"down {len(a.received)}/{len(down)}")
        if not (a.conn.state is State.CLOSED and b.conn.state is State.CLOSED):
            problems.append(f"states {a.conn.state.value}/{b.conn.state.value} at {link.now:.1f}s")
        stats = link.stats
        if stats.max_sack_blocks > 4:
            problems.append(f"{stats.max_sack_blocks} SACK blocks")
        if not (config.mss <= stats.min_cwnd and stats.max_cwnd <= config.max_cwnd_bytes):
            problems.append(f"cwnd {stats.min_cwnd}..{stats.max_cwnd}")
        if not (config.rto_min <= stats.min_rto and stats.max_rto <= config.rto_max):
            problems.append(f"rto {stats.min_rto}..{stats.max_rto}")
        sent_before = stats.sent
        link.run(max_steps=1000, max_time=link.now + 60)  # after close: nothing more, ever
        if stats.sent != sent_before:
            problems.append(f"{stats.sent - sent_before} packets after close")
        if problems:
            failures.append((seed, problems))
    assert not failures, f"loss {loss}: {len(failures)} failing seeds, first: {failures[:3]}"


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
