# SPDX-License-Identifier: Apache-2.0
"""Congestion controllers behind one small interface, chosen by name (transport.md §9).

Where it sits: ring 2, owned by one stream connection. Units are bytes. The connection reports
events; the controller only answers ``window_bytes``.
"""

from __future__ import annotations

from typing import Callable, Protocol

from pilotsock.transport.send_queue import RateSample


class CongestionController(Protocol):
    mss: int

    def on_sent(self, sent_bytes: int, now: float) -> None: ...
    def on_acked(self, acked_bytes: int, now: float, *, in_recovery: bool) -> None: ...
    def on_rate_sample(self, sample: RateSample, now: float, *, min_rtt: float | None, delivered: int,
                       inflight: int) -> None: ...
    def on_loss(self, flight_bytes: int, now: float) -> None: ...
    def on_timeout(self, flight_bytes: int, now: float) -> None: ...
    @property
    def window_bytes(self) -> int: ...
    @property
    def pacing_rate(self) -> float | None:
        """Bytes per second to pace at, or None for no pacing."""


class NewReno:
    """RFC 5681 slow start / congestion avoidance with ABC (RFC 3465), D01 loss responses."""

    name = "newreno"

    def __init__(self, *, mss: int, initial_window_bytes: int, max_window_bytes: int) -> None:
        self.mss = mss
        self.cwnd = initial_window_bytes
        self.ssthresh = max_window_bytes  # "arbitrarily high"
        self.max_window = max_window_bytes

    @property
    def window_bytes(self) -> int:
        return self.cwnd

    @property
    def pacing_rate(self) -> float | None:
        return None

    def on_sent(self, sent_bytes: int, now: float) -> None:
        return None

    def on_rate_sample(self, sample: RateSample, now: float, *, min_rtt: float | None, delivered: int,
                       inflight: int) -> None:
        return None

    def on_acked(self, acked_bytes: int, now: float, *, in_recovery: bool) -> None:
        if in_recovery or acked_bytes <= 0:
            return
        if self.cwnd < self.ssthresh:
            self.cwnd += acked_bytes
        else:
            self.cwnd += max(1, self.mss * acked_bytes // self.cwnd)
        if self.cwnd > self.max_window:
            self.cwnd = self.max_window

    def on_loss(self, flight_bytes: int, now: float) -> None:
        self.ssthresh = max(flight_bytes // 2, 2 * self.mss)
        self.cwnd = self.ssthresh

    def on_timeout(self, flight_bytes: int, now: float) -> None:
        self.ssthresh = max(flight_bytes // 2, 2 * self.mss)
        self.cwnd = self.mss


ControllerFactory = Callable[..., CongestionController]
CONTROLLERS: dict[str, ControllerFactory] = {"newreno": NewReno}


def register_controller(name: str, factory: ControllerFactory) -> None:
    CONTROLLERS[name] = factory


def make_controller(name: str, *, mss: int, initial_window_bytes: int, max_window_bytes: int) -> CongestionController:
    """Build a controller by registered name. Raises ``ValueError`` for an unknown name."""
    if name == "bbr" and name not in CONTROLLERS:
        from pilotsock.transport import bbr  # noqa: F401 - registers itself
    try:
        factory = CONTROLLERS[name]
    except KeyError:
        raise ValueError(f"unknown congestion controller {name!r}; have {sorted(CONTROLLERS)}") from None
    return factory(mss=mss, initial_window_bytes=initial_window_bytes, max_window_bytes=max_window_bytes)


AUTO = "auto"


def auto_choice(handshake_rtt: float | None, *, bbr_min_rtt: float) -> str:
    """The controller "auto" picks once the handshake completes: BBR when the path is slow or
    lost a handshake segment (no RTT sample), NewReno on a fast local path."""
    return "newreno" if handshake_rtt is not None and handshake_rtt < bbr_min_rtt else "bbr"
