# SPDX-License-Identifier: Apache-2.0
"""Connections in TIME_WAIT, kept as small remnants (transport.md §10; Linux's timewait socks).

Where it sits: ring 2 (pure bookkeeping, ``now`` passed in). A stream that reaches TIME_WAIT
needs nothing of its machine any more: no buffers, no congestion state, no application. What it
must still do for ``time_wait_seconds`` is keep its 4-tuple (and local port) taken and answer a
retransmitted FIN with a pure ACK, so the peer's LAST_ACK ends. The daemon therefore swaps the
full :class:`~pilotsock.transport.connection.StreamConnection` (several KB) for a
:class:`Remnant` here; a dial loop leaves thousands of them.

All remnants wait the same time, so insertion order is expiry order: ``expire`` pops from the
front, and one deadline (the oldest remnant's, plus ``batch`` to expire several per wake-up)
covers the whole table.
"""

from __future__ import annotations

from pilotsock.transport.states import OutSegment
from pilotsock.wire.header import Flag

ACK = int(Flag.ACK)
ConnKey = tuple[int, int, int, int]  # local port, remote network, remote node, remote port


class Remnant:
    """What a connection in TIME_WAIT remembers: enough to re-acknowledge the peer's FIN."""

    __slots__ = ("snd_nxt", "rcv_nxt", "window_units", "until", "reuse")

    def __init__(self, snd_nxt: int, rcv_nxt: int, window_units: int, until: float, reuse: bool) -> None:
        self.snd_nxt = snd_nxt
        self.rcv_nxt = rcv_nxt
        self.window_units = window_units
        self.until = until
        self.reuse = reuse  # made with SO_REUSEADDR: the port bookkeeping must release it the same way

    def ack(self) -> OutSegment:
        """The pure ACK a retransmitted FIN gets (never a FIN, never a restart: §10 rule 5)."""
        return OutSegment(ACK, self.snd_nxt, self.rcv_nxt, self.window_units)


class TimeWaitTable:
    """Remnants by connection key, oldest first."""

    def __init__(self, seconds: float, *, batch: float = 0.1) -> None:
        self.seconds = seconds
        self.batch = batch
        self._remnants: dict[ConnKey, Remnant] = {}

    def __len__(self) -> int:
        return len(self._remnants)

    def __contains__(self, key: ConnKey) -> bool:
        return key in self._remnants

    def get(self, key: ConnKey) -> Remnant | None:
        return self._remnants.get(key)

    def add(self, key: ConnKey, *, snd_nxt: int, rcv_nxt: int, window_units: int, reuse: bool,
            now: float) -> Remnant:
        """``key`` entered TIME_WAIT at ``now``; it is kept for ``seconds``."""
        self._remnants.pop(key, None)  # re-entered: back of the line, so order stays expiry order
        remnant = Remnant(snd_nxt, rcv_nxt, window_units, now + self.seconds, reuse)
        self._remnants[key] = remnant
        return remnant

    def remove(self, key: ConnKey) -> Remnant | None:
        """End one TIME_WAIT early (an RST, or a new SYN for the same 4-tuple)."""
        return self._remnants.pop(key, None)

    def expire(self, now: float) -> list[tuple[ConnKey, Remnant]]:
        """Remove and return every remnant whose time is up."""
        done: list[tuple[ConnKey, Remnant]] = []
        remnants = self._remnants
        for key, remnant in remnants.items():
            if remnant.until > now:
                break
            done.append((key, remnant))
        for key, _ in done:
            del remnants[key]
        return done

    def next_deadline(self) -> float | None:
        """When ``expire`` has work next (None when empty)."""
        for remnant in self._remnants.values():
            return remnant.until + self.batch
        return None
