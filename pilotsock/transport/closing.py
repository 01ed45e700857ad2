# SPDX-License-Identifier: Apache-2.0
"""Closing a stream: the peer's FIN and the acknowledgment of ours (transport.md §6, §10).

Where it sits: ring 2, a part of :class:`~pilotsock.transport.connection.StreamConnection`'s
machine kept apart for size, like ``recovery.py``: functions of the connection's state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pilotsock.transport.seqnum import seq_diff, seq_gt
from pilotsock.transport.states import SYNCHRONIZED_STATES, ConnEvent, State

if TYPE_CHECKING:
    from pilotsock.transport.connection import StreamConnection


def on_fin(conn: StreamConnection, fin_seq: int, has_ack: bool, now: float) -> None:
    """A FIN arrived (transport.md §6, §10)."""
    if conn._close.peer_fin_received or conn.state not in SYNCHRONIZED_STATES:
        conn._ack.now = True
        return
    offset = seq_diff(fin_seq, conn.receive_queue.rcv_nxt)
    if offset != 0:
        conn._ack.now = True
    if offset > 0:
        # Gap before the FIN: hold EOF until it fills; a Go sender never retransmits after
        # its FIN, so give up after 2 x RTO with ECONNRESET rather than a clean EOF.
        conn._close.pending_fin_seq = fin_seq
        conn._close.pending_fin_has_ack = has_ack
        if conn.timers.fin_gap_at is None:
            conn.timers.fin_gap_at = now + conn.config.fin_gap_rto_multiplier * conn.rtt.rto
        return
    if offset < 0:
        return  # an old FIN we already processed
    accept_fin(conn, has_ack, now)


def accept_fin(conn: StreamConnection, has_ack: bool, now: float) -> None:
    """The peer's FIN is next in sequence: end of its stream."""
    queue = conn.receive_queue
    queue.reset(queue.rcv_nxt + 1)
    conn._close.peer_fin_received = True
    conn._events.append(ConnEvent.PEER_EOF)
    if not has_ack:
        # Go-style full close: the peer reads nothing more; drop what we still had to send.
        conn._ack.now = True
        conn._events.append(ConnEvent.PEER_GONE)
        conn._enter_time_wait(now)
        return
    if conn.state is State.ESTABLISHED:
        conn._set_state(State.CLOSE_WAIT)
        # The application usually closes on EOF at once: its FIN carries this ACK (3 datagrams, not 4).
        conn._delay_ack(now, conn.config.short_segment_ack_delay)
        return
    conn._ack.now = True
    if conn.state is State.FIN_WAIT_1:
        conn._set_state(State.CLOSING)
    elif conn.state is State.FIN_WAIT_2:
        conn._enter_time_wait(now)


def on_fin_acknowledged(conn: StreamConnection, ack: int, now: float) -> None:
    """An ACK arrived: if it covers our FIN, move on in the close."""
    close = conn._close
    if not close.fin_sent or close.fin_acked or not seq_gt(ack, close.fin_seq):
        return
    close.fin_acked = True
    if conn.state is State.FIN_WAIT_1:
        conn._set_state(State.FIN_WAIT_2)
        conn._arm_orphan(now)
    elif conn.state is State.CLOSING:
        conn._enter_time_wait(now)
    elif conn.state is State.LAST_ACK:
        conn._enter_closed()
