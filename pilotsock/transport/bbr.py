# SPDX-License-Identifier: Apache-2.0
"""A BBR-style congestion controller: a model of bottleneck bandwidth and RTT, with pacing.

Where it sits: ring 2, behind the ``CongestionController`` interface, selected by name ("bbr").

Why (transport.md §9, issue "Reliable stream transport"): a loss-based controller treats random
loss as congestion; at 0.5 % loss on a 100 ms path NewReno is bound near
MSS/RTT·1.22/√p ≈ 0.25 MB/s. This controller follows BBR v1 (Cardwell et al., ACM Queue 2016):
- **bandwidth** = windowed max of delivery-rate samples over the last 10 round trips
  (app-limited samples only raise it);
- **min RTT** over 10 s; BDP = bandwidth × max(min RTT, 2 ms) (the floor covers event-loop
  batching on fast local paths, where the ACK of a batch lags the wire RTT);
- **states**: STARTUP (gain 2/ln 2 until bandwidth stops growing 25 % for 3 rounds), DRAIN
  (inverse gain until in-flight <= BDP), PROBE_BW (pacing gain cycle 1.25, 0.75, 1 × 6, one phase
  per min RTT);
- **cwnd** = 2 × BDP (at least 4 segments); loss does not shrink the model, only an RTO trims
  the window to the pipe for one round.
Simplifications: no PROBE_RTT phase (min RTT simply expires after 10 s) and no ACK-aggregation
estimate beyond the BDP floor.
"""

from __future__ import annotations

import enum
from collections import deque

from pilotsock.transport.congestion import register_controller
from pilotsock.transport.send_queue import RateSample

STARTUP_GAIN = 2.885  # 2 / ln 2
PROBE_BW_GAINS = (1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
CWND_GAIN = 2.0
BANDWIDTH_WINDOW_ROUNDS = 10
MIN_RTT_WINDOW_SECONDS = 10.0
MIN_RTT_FLOOR_SECONDS = 0.002
FULL_BANDWIDTH_GROWTH = 1.25
FULL_BANDWIDTH_ROUNDS = 3
MIN_CWND_SEGMENTS = 4


class Mode(enum.Enum):
    STARTUP = "startup"
    DRAIN = "drain"
    PROBE_BW = "probe_bw"


class Bbr:
    name = "bbr"

    def __init__(self, *, mss: int, initial_window_bytes: int, max_window_bytes: int) -> None:
        self.mss = mss
        self.max_window = max_window_bytes
        self.cwnd: float = float(initial_window_bytes)
        self.mode = Mode.STARTUP
        self.pacing_gain = STARTUP_GAIN
        self.cwnd_gain = STARTUP_GAIN
        self.bandwidth = 0.0  # bytes per second
        self._samples: deque[tuple[int, float]] = deque()  # (round, rate), rates decreasing
        self.min_rtt: float | None = None
        self._min_rtt_at = 0.0
        self.round = 0
        self._next_round_delivered = 0
        self._full_bandwidth = 0.0
        self._full_bandwidth_rounds = 0
        self.filled_pipe = False
        self._cycle_index = 0
        self._cycle_started_at = 0.0
        self._initial_window = initial_window_bytes

    # -- interface --------------------------------------------------------------------------

    @property
    def window_bytes(self) -> int:
        return int(self.cwnd)

    @property
    def pacing_rate(self) -> float | None:
        if self.bandwidth <= 0:
            return None  # no model yet: the initial window goes out unpaced, like IW10
        return self.pacing_gain * self.bandwidth

    def on_sent(self, sent_bytes: int, now: float) -> None:
        return None

    def on_acked(self, acked_bytes: int, now: float, *, in_recovery: bool) -> None:
        target = self._target_cwnd()
        if self.filled_pipe:
            self.cwnd = min(self.cwnd + acked_bytes, target)
        else:
            self.cwnd += acked_bytes  # startup: grow freely; the target takes over once full
        self.cwnd = max(MIN_CWND_SEGMENTS * self.mss, min(self.cwnd, self.max_window))

    def on_rate_sample(self, sample: RateSample, now: float, *, min_rtt: float | None, delivered: int,
                       inflight: int) -> None:
        if min_rtt is not None and (self.min_rtt is None or min_rtt <= self.min_rtt
                                    or now - self._min_rtt_at > MIN_RTT_WINDOW_SECONDS):
            self.min_rtt = min_rtt
            self._min_rtt_at = now
        round_started = False
        if delivered >= self._next_round_delivered:
            self._next_round_delivered = delivered + inflight
            self.round += 1
            round_started = True
        rate = sample.delivered_bytes / sample.interval
        # Windowed max over the last BANDWIDTH_WINDOW_ROUNDS rounds: a deque of decreasing rates,
        # O(1) amortized per sample (a 100 ms path has thousands of ACKs in ten rounds).
        samples = self._samples
        if rate >= self.bandwidth or not sample.app_limited:
            while samples and samples[-1][1] <= rate:
                samples.pop()
            samples.append((self.round, rate))
        while samples and self.round - samples[0][0] >= BANDWIDTH_WINDOW_ROUNDS:
            samples.popleft()
        self.bandwidth = samples[0][1] if samples else 0.0
        if round_started and not self.filled_pipe and not sample.app_limited:
            self._check_full_bandwidth()
        self._advance_mode(now, inflight)

    def on_loss(self, flight_bytes: int, now: float) -> None:
        return None  # random loss is not a congestion signal for this model

    def on_timeout(self, flight_bytes: int, now: float) -> None:
        self.cwnd = max(MIN_CWND_SEGMENTS * self.mss, min(self.cwnd, flight_bytes + self.mss))

    # -- model ------------------------------------------------------------------------------

    def _bdp(self) -> float:
        rtt = max(self.min_rtt or MIN_RTT_FLOOR_SECONDS, MIN_RTT_FLOOR_SECONDS)
        return self.bandwidth * rtt

    def _target_cwnd(self) -> float:
        if self.bandwidth <= 0:
            return float(self._initial_window)
        return max(self.cwnd_gain * self._bdp(), MIN_CWND_SEGMENTS * self.mss)

    def _check_full_bandwidth(self) -> None:
        if self.bandwidth >= self._full_bandwidth * FULL_BANDWIDTH_GROWTH:
            self._full_bandwidth = self.bandwidth
            self._full_bandwidth_rounds = 0
            return
        self._full_bandwidth_rounds += 1
        if self._full_bandwidth_rounds >= FULL_BANDWIDTH_ROUNDS:
            self.filled_pipe = True

    def _advance_mode(self, now: float, inflight: int) -> None:
        if self.mode is Mode.STARTUP and self.filled_pipe:
            self.mode = Mode.DRAIN
            self.pacing_gain = 1 / STARTUP_GAIN
            self.cwnd_gain = STARTUP_GAIN
        if self.mode is Mode.DRAIN and inflight <= self._bdp():
            self.mode = Mode.PROBE_BW
            self.cwnd_gain = CWND_GAIN
            self._cycle_index = 2  # start in a cruising phase
            self.pacing_gain = PROBE_BW_GAINS[self._cycle_index]
            self._cycle_started_at = now
        if self.mode is Mode.PROBE_BW:
            phase = max(self.min_rtt or MIN_RTT_FLOOR_SECONDS, MIN_RTT_FLOOR_SECONDS)
            if now - self._cycle_started_at > phase:
                self._cycle_index = (self._cycle_index + 1) % len(PROBE_BW_GAINS)
                self.pacing_gain = PROBE_BW_GAINS[self._cycle_index]
                self._cycle_started_at = now


register_controller("bbr", Bbr)
