# SPDX-License-Identifier: Apache-2.0
"""Stream states, their legal transitions, events and the output segment type.

Where it sits: ring 2, shared by :mod:`pilotsock.transport.connection` and its tests. The state set
is D01's plus TCP's FIN_WAIT_2/CLOSING/LAST_ACK, needed for half-close (transport.md §2).
"""

from __future__ import annotations

import enum
from typing import NamedTuple


class State(enum.Enum):
    CLOSED = "CLOSED"
    SYN_SENT = "SYN_SENT"
    SYN_RECEIVED = "SYN_RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN_WAIT_1"  # our FIN sent, not yet acknowledged
    FIN_WAIT_2 = "FIN_WAIT_2"  # our FIN acknowledged, waiting for the peer's
    CLOSING = "CLOSING"  # both FINs sent, ours not acknowledged
    CLOSE_WAIT = "CLOSE_WAIT"  # peer finished; we may still send
    LAST_ACK = "LAST_ACK"  # peer finished, our FIN sent
    TIME_WAIT = "TIME_WAIT"


# Legal transitions; _set_state refuses anything else (a bug, not a peer error).
TRANSITIONS: dict[State, frozenset[State]] = {
    State.CLOSED: frozenset({State.SYN_SENT, State.SYN_RECEIVED}),
    State.SYN_SENT: frozenset({State.ESTABLISHED, State.CLOSED}),
    State.SYN_RECEIVED: frozenset({State.ESTABLISHED, State.CLOSED}),
    State.ESTABLISHED: frozenset({State.FIN_WAIT_1, State.CLOSE_WAIT, State.TIME_WAIT, State.CLOSED}),
    State.FIN_WAIT_1: frozenset({State.FIN_WAIT_2, State.CLOSING, State.TIME_WAIT, State.CLOSED}),
    State.FIN_WAIT_2: frozenset({State.TIME_WAIT, State.CLOSED}),
    State.CLOSING: frozenset({State.TIME_WAIT, State.CLOSED}),
    State.CLOSE_WAIT: frozenset({State.LAST_ACK, State.TIME_WAIT, State.CLOSED}),
    State.LAST_ACK: frozenset({State.CLOSED, State.TIME_WAIT}),
    State.TIME_WAIT: frozenset({State.CLOSED}),
}

SENDING_STATES = frozenset({State.ESTABLISHED, State.CLOSE_WAIT})
RECEIVING_STATES = frozenset({State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2})
SYNCHRONIZED_STATES = frozenset({
    State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSING, State.CLOSE_WAIT,
    State.LAST_ACK,
})


class ConnEvent(enum.Enum):
    ESTABLISHED = "established"  # dialer: connect() may return; responder: ready for accept()
    REFUSED = "refused"  # RST while dialing -> ECONNREFUSED
    RESET = "reset"  # RST (or an unfillable gap before FIN) -> ECONNRESET
    TIMED_OUT = "timed_out"  # give-up, SYN retries exhausted or idle -> ETIMEDOUT
    PEER_EOF = "peer_eof"  # all data before the peer's FIN is in the receive queue
    PEER_GONE = "peer_gone"  # peer closed fully (Go FIN without ACK): writes fail with EPIPE
    CLOSED = "closed"  # no state left; the owner may forget the connection


class OutSegment(NamedTuple):
    flags: int
    seq: int
    ack: int
    window_units: int
    payload: bytes = b""
