# SPDX-License-Identifier: Apache-2.0
"""Admission of new streams: SYN token buckets and connection caps (transport.md §12).

Where it sits: ring 2. The daemon asks ``admit_syn`` before creating a connection for a SYN.
Defaults follow Go (100 SYN/s global, 10/s per source) but with a burst of 64 per source and
same-node connections exempt, so a single well-behaved client is never throttled to 10/s.
"""

from __future__ import annotations

import enum

from pilotsock.config import AdmissionConfig


class Verdict(enum.Enum):
    ACCEPT = "accept"
    DROP = "drop"  # rate limited: no reply (the dialer retransmits its SYN)
    RESET = "reset"  # over a cap: answer with RST


class _Bucket:
    __slots__ = ("tokens", "updated_at")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.updated_at = now

    def take(self, rate: float, burst: float, now: float) -> bool:
        self.tokens = min(burst, self.tokens + (now - self.updated_at) * rate)
        self.updated_at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Admission:
    def __init__(self, config: AdmissionConfig, *, own_node: int) -> None:
        self.config = config
        self.own_node = own_node
        self._global = _Bucket(config.syn_rate_global, 0.0)
        self._sources: dict[int, _Bucket] = {}
        self._reaped_at = 0.0

    def admit_syn(self, source_node: int, *, connections_on_port: int, connections_total: int,
                  now: float) -> Verdict:
        config = self.config
        if connections_on_port >= config.max_connections_per_port or connections_total >= config.max_connections_total:
            return Verdict.RESET
        if config.exempt_same_node and source_node == self.own_node:
            return Verdict.ACCEPT
        if not self._global.take(config.syn_rate_global, max(1.0, config.syn_rate_global), now):
            return Verdict.DROP
        self._reap(now)
        bucket = self._sources.get(source_node)
        if bucket is None:
            if len(self._sources) >= config.syn_sources_max:
                return Verdict.DROP
            bucket = self._sources[source_node] = _Bucket(float(config.syn_burst_per_source), now)
        if not bucket.take(config.syn_rate_per_source, float(config.syn_burst_per_source), now):
            return Verdict.DROP
        return Verdict.ACCEPT

    def _reap(self, now: float) -> None:
        if now - self._reaped_at < 10.0:
            return
        self._reaped_at = now
        idle = [node for node, bucket in self._sources.items() if now - bucket.updated_at > 10.0]
        for node in idle:
            del self._sources[node]
