# SPDX-License-Identifier: Apache-2.0
"""RTT estimation and the retransmission timeout (RFC 6298; transport.md §8).

Where it sits: ring 2, owned by one stream connection.
"""

from __future__ import annotations


class RttEstimator:
    """SRTT/RTTVAR smoothing, RTO = SRTT + max(G, 4·RTTVAR) clamped, with exponential backoff."""

    def __init__(self, *, initial: float, minimum: float, maximum: float, granularity: float) -> None:
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.min_rtt: float | None = None
        self._initial = initial
        self._min = minimum
        self._max = maximum
        self._granularity = granularity
        self._base_rto = initial
        self.backoff = 1

    def on_sample(self, rtt: float) -> None:
        if rtt < 0:
            return
        if self.srtt is None:
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        if self.min_rtt is None or rtt < self.min_rtt:
            self.min_rtt = rtt
        self._base_rto = min(self._max, max(self._min, self.srtt + max(self._granularity, 4 * self.rttvar)))

    @property
    def rto(self) -> float:
        """The current timeout including backoff, never above the maximum."""
        return min(self._max, self._base_rto * self.backoff)

    def on_timeout(self) -> None:
        if self._base_rto * self.backoff < self._max:
            self.backoff *= 2

    def reset_backoff(self) -> None:
        self.backoff = 1
