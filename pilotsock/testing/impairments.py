# SPDX-License-Identifier: Apache-2.0
"""One netem-like impairment model for one direction of a path, shared by the in-process
:class:`~pilotsock.testing.link.SimulatedLink` and the link emulator process.

:meth:`ImpairedDirection.schedule` turns one datagram sent at ``now`` into the copies that
survive, each with its departure time: an MTU check, random loss, duplication, bit corruption,
a rate-limited bottleneck with a bounded queue (tail drop past ``queue_seconds``), one-way delay,
jitter and reordering (extra delay). Randomness comes only from the ``random.Random`` given, and
a draw is made only for an impairment that is switched on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol


@dataclass
class Impairments:
    delay_seconds: float = 0.0
    jitter_seconds: float = 0.0
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_extra_seconds: float = 0.010
    corrupt: float = 0.0
    rate_bytes_per_second: float = 0.0  # 0 = unlimited
    queue_seconds: float = 0.2
    mtu: int = 0  # 0 = unlimited; larger datagrams are dropped


class ImpairmentCounters(Protocol):
    lost: int
    duplicated: int
    corrupted: int
    queue_dropped: int
    oversize: int


class ImpairedDirection:
    def __init__(self, impairments: Impairments, rng: random.Random, counters: ImpairmentCounters,
                 start: float = 0.0) -> None:
        self.impairments = impairments
        self.rng = rng
        self.counters = counters
        self.link_free_at = start  # when the rate-limited link finishes the last queued packet

    def schedule(self, now: float, data: bytes) -> list[tuple[float, bytes]]:
        """Return (arrival time, bytes) for each copy that survives."""
        imp, rng, counters = self.impairments, self.rng, self.counters
        if imp.mtu and len(data) > imp.mtu:
            counters.oversize += 1
            return []
        if imp.loss and rng.random() < imp.loss:
            counters.lost += 1
            return []
        copies = 1
        if imp.duplicate and rng.random() < imp.duplicate:
            copies = 2
            counters.duplicated += 1
        out = []
        for _ in range(copies):
            payload = data
            if imp.corrupt and rng.random() < imp.corrupt:
                flipped = bytearray(data)
                flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
                payload = bytes(flipped)
                counters.corrupted += 1
            departure = now
            if imp.rate_bytes_per_second:
                start = max(now, self.link_free_at)
                if start - now > imp.queue_seconds:
                    counters.queue_dropped += 1
                    continue
                departure = self.link_free_at = start + len(payload) / imp.rate_bytes_per_second
            arrival = departure + imp.delay_seconds
            if imp.jitter_seconds:
                arrival += rng.random() * imp.jitter_seconds
            if imp.reorder and rng.random() < imp.reorder:
                arrival += rng.random() * imp.reorder_extra_seconds
            out.append((arrival, payload))
        return out
