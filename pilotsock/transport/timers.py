# SPDX-License-Identifier: Apache-2.0
"""Per-connection bookkeeping records: named deadlines, handshake/close/ACK state, statistics.

Where it sits: ring 2, owned by one :class:`~pilotsock.transport.connection.StreamConnection`.
Deadlines are absolute monotonic seconds (``*_at``/``*_until``); None means "not armed".
"""

from __future__ import annotations


class HandshakeState:
    __slots__ = ("_due", "sent_at", "transmissions")

    def __init__(self) -> None:
        self._due = False
        self.sent_at = 0.0
        self.transmissions = 0

    @property
    def due(self) -> bool:
        return self._due

    @due.setter
    def due(self, value: bool) -> None:
        if value and not self._due:
            self.transmissions += 1
        self._due = value


class CloseState:
    __slots__ = ("fin_requested", "fin_sent", "fin_seq", "fin_acked", "peer_fin_received",
                 "pending_fin_seq", "pending_fin_has_ack", "nagle_expired", "orphaned")

    def __init__(self) -> None:
        self.fin_requested = False
        self.fin_sent = False
        self.fin_seq = 0
        self.fin_acked = False
        self.peer_fin_received = False
        self.pending_fin_seq: int | None = None
        self.pending_fin_has_ack = True
        self.nagle_expired = False
        self.orphaned = False  # the application closed its socket completely


class AckState:
    __slots__ = ("now", "keepalive", "window_update", "unacked_segments")

    def __init__(self) -> None:
        self.now = False
        self.keepalive = False
        self.window_update = False
        self.unacked_segments = 0


class ConnectionTimers:
    """Named absolute deadlines (monotonic seconds); None = not armed."""

    __slots__ = ("retransmit_at", "delayed_ack_at", "nagle_at", "keepalive_at", "idle_at",
                 "time_wait_until", "fin_gap_at", "probe_at", "pacing_at", "orphan_at")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.retransmit_at: float | None = None
        self.delayed_ack_at: float | None = None
        self.nagle_at: float | None = None
        self.keepalive_at: float | None = None
        self.idle_at: float | None = None
        self.time_wait_until: float | None = None
        self.fin_gap_at: float | None = None
        self.probe_at: float | None = None  # tail loss probe (RFC 8985 §7)
        self.pacing_at: float | None = None  # the next paced transmission may go
        self.orphan_at: float | None = None  # an orphan in FIN_WAIT_2 gives up

    def earliest(self) -> float | None:
        candidates = [t for t in (self.retransmit_at, self.delayed_ack_at, self.nagle_at, self.keepalive_at,
                                  self.idle_at, self.time_wait_until, self.fin_gap_at, self.probe_at,
                                  self.pacing_at, self.orphan_at)
                      if t is not None]
        return min(candidates) if candidates else None


class ConnectionStats:
    __slots__ = ("segments_sent", "segments_received", "bytes_sent", "bytes_received", "retransmissions",
                 "fast_retransmits", "timeouts", "tail_loss_probes",
                 "spurious_retransmissions", "duplicate_segments", "beyond_window_segments")

    def __init__(self) -> None:
        self.segments_sent = 0
        self.segments_received = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.retransmissions = 0
        self.fast_retransmits = 0
        self.timeouts = 0
        self.tail_loss_probes = 0
        self.spurious_retransmissions = 0
        self.duplicate_segments = 0  # received data segments that held nothing new
        self.beyond_window_segments = 0  # received data segments dropped past the window edge

    def add_to(self, counters: dict[str, int], prefix: str = "stream.") -> None:
        """Add these statistics to a counter table (the daemon's ``stats``)."""
        for name in self.__slots__:
            key = prefix + name
            counters[key] = counters.get(key, 0) + getattr(self, name)
