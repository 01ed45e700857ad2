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
    reno_time = sum(_transfer(TransportConfig(congestion_control="newreno"), seed, 0.05)[0].now for seed in range(5))
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


@pytest.mark.parametrize(("delay", "expected"), [(0.0005, "newreno"), (0.02, "bbr")])
def test_auto_picks_the_controller_from_the_handshake_rtt(delay: float, expected: str) -> None:
    link = SimulatedLink(seed=3, delay_seconds=delay)
    a, b = connected_pair(link, TransportConfig())
    link.run(until=lambda: a.conn.state is State.ESTABLISHED and b.conn.state is State.ESTABLISHED,
             max_steps=1000)
    assert a.conn.cc.name == expected and b.conn.cc.name == expected
    if expected == "newreno":
        assert a.conn.cc.max_window == TransportConfig().low_rtt_max_cwnd_bytes  # type: ignore[attr-defined]


def test_auto_picks_bbr_when_the_handshake_was_retransmitted() -> None:
    link = SimulatedLink(seed=3, delay_seconds=0.0005)
    a, _ = connected_pair(link, TransportConfig())
    a.conn.segments_to_send(link.now)  # the first SYN is lost: never transmitted on the link
    link.run(until=lambda: a.conn.state is State.ESTABLISHED, max_steps=1000, max_time=5)
    assert a.conn.cc.name == "bbr"
