"""The BBR-style controller: exact delivery on the seeded link at every loss rate, far fewer
simulated seconds than NewReno under random loss, and paced transmission once it has a model."""

import random

import pytest

from pilotsock.config import TransportConfig
from pilotsock.testing.link import SimulatedLink, connected_pair
from pilotsock.transport.bbr import Bbr, Mode
from pilotsock.transport.connection import State

BBR = TransportConfig(congestion_control="bbr")


def _transfer(config: TransportConfig, seed: int, loss: float) -> tuple[SimulatedLink, bool]:
    link = SimulatedLink(seed=seed, loss=loss, duplicate=0.02, reorder=0.05, corrupt=0.01, delay_seconds=0.02,
                         jitter_seconds=0.005)
    a, b = connected_pair(link, config)
    rng = random.Random(seed)
    up, down = rng.randbytes(300_000), rng.randbytes(300_000)
    a.pending_write += up
    a.close_after_write = True
    b.pending_write += down
    b.close_after_write = True
    link.run(until=lambda: a.conn.is_closed and b.conn.is_closed, max_steps=1_000_000, max_time=600)
    ok = (bytes(b.received) == up and bytes(a.received) == down
          and a.conn.state is State.CLOSED and b.conn.state is State.CLOSED)
    return link, ok


@pytest.mark.parametrize("loss", [0.0, 0.01, 0.05, 0.10, 0.30])
def test_bbr_delivers_exactly(loss: float) -> None:
    failures = [seed for seed in range(30) if not _transfer(BBR, seed, loss)[1]]
    assert not failures, f"loss {loss}: seeds {failures}"


def test_bbr_beats_newreno_under_random_loss() -> None:
    bbr_time = sum(_transfer(BBR, seed, 0.05)[0].now for seed in range(5))
    reno_time = sum(_transfer(TransportConfig(), seed, 0.05)[0].now for seed in range(5))
    assert bbr_time < reno_time


def test_bbr_paces_once_it_has_a_model() -> None:
    link = SimulatedLink(seed=1, delay_seconds=0.02)
    a, b = connected_pair(link, BBR)
    a.pending_write += random.Random(1).randbytes(3_000_000)
    link.run(until=lambda: len(b.received) > 1_000_000, max_steps=200_000)
    controller = a.conn.cc
    assert isinstance(controller, Bbr)
    assert controller.bandwidth > 0 and controller.pacing_rate is not None
    assert controller.mode in (Mode.STARTUP, Mode.DRAIN, Mode.PROBE_BW)
    burst = a.conn.segments_to_send(link.now)
    assert sum(len(s.payload) for s in burst) <= controller.pacing_rate * 0.001 + 2 * BBR.mss
