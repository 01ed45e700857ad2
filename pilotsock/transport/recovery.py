# SPDX-License-Identifier: Apache-2.0
"""Loss detection and recovery timing for a stream connection: RACK-TLP, RTO and pacing.

Where it sits: ring 2, functions over one
:class:`~pilotsock.transport.connection.StreamConnection` (kept apart so the connection file stays
reviewable); they read and write the connection's state.

- **Loss detection** (RFC 8985 RACK): once an RTT is known, a segment is lost when one
  transmitted after it was delivered at least ``reorder window`` later; the window starts at
  min_rtt/4 and widens when a retransmission proves spurious. Before the first RTT sample, the
  RFC 6675 DupThresh rule applies; three duplicate ACKs without SACK mark the head (RFC 5681).
- **Tail loss probe** (RFC 8985 §7): 2·SRTT after the last activity, send new data or the last
  segment instead of waiting for the RTO.
- **RTO** (RFC 6298): every un-SACKed segment is presumed lost; the give-up rule counts only
  timeouts the peer never answered.
- **Pacing**: when the congestion controller gives a rate, sends are spread with bursts of at most
  ``PACING_BURST_SECONDS`` and a ``pacing_at`` deadline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pilotsock.transport.states import SENDING_STATES, SYNCHRONIZED_STATES, ConnEvent, OutSegment, State

if TYPE_CHECKING:
    from pilotsock.transport.connection import StreamConnection

MAX_REORDER_STEPS = 8
PACING_BURST_SECONDS = 0.001  # at most ~1 ms of pacing credit is sent as one burst
RST = 0x8



def detect_losses(conn: StreamConnection, now: float) -> None:
    queue = conn.send_queue
    if not queue.segments:
        return
    threshold = conn.config.duplicate_ack_threshold
    min_rtt = conn.rtt.min_rtt
    if min_rtt is None:
        marked = queue.mark_sack_losses(threshold)  # no RTT yet: RFC 6675 DupThresh
    else:
        # RACK (RFC 8985) replaces DupThresh once an RTT is known: reordering shorter than
        # min_rtt/4 (jitter, paced flights) no longer triggers spurious retransmissions.
        # The scan is O(outstanding segments): run it only when a loss is possible. On a
        # loss-free stream every outstanding segment was transmitted after the newest
        # delivered one, so the head's transmission order is the cheap test.
        marked = 0
        if queue.sacked_bytes or queue.lost_count or queue.segments[0].order < queue.rack_order:
            reorder_window = min(conn._reorder_steps * min_rtt / 4, conn.rtt.srtt or min_rtt)
            marked = queue.mark_rack_losses(reorder_window)
    if conn._recovery_point is None and conn._duplicate_acks >= threshold:
        marked += int(queue.mark_lost(queue.segments[0]))
    if marked and conn._recovery_point is None:
        conn._recovery_point = conn.snd_nxt
        conn.cc.on_loss(queue.pipe_bytes + queue.sacked_bytes, now)
        conn.stats.fast_retransmits += 1

def on_retransmit_timeout(conn: StreamConnection, now: float) -> None:
    if conn.state is State.SYN_SENT or conn.state is State.SYN_RECEIVED:
        handshake = conn._handshake
        schedule = conn.config.syn_retry_schedule
        if handshake.transmissions > len(schedule):
            if conn.state is State.SYN_SENT:
                conn._fail(ConnEvent.TIMED_OUT)
            else:
                conn._enter_closed()
            return
        handshake.due = True
        conn.timers.retransmit_at = now + schedule[min(handshake.transmissions, len(schedule)) - 1]
        return
    queue = conn.send_queue
    if not queue.segments:
        return
    if conn._heard_since_timeout:
        conn._timeouts_unanswered = 1
    else:
        conn._timeouts_unanswered += 1
    conn._heard_since_timeout = False
    if conn._timeouts_unanswered >= conn.config.max_transmissions:
        conn._out.append(OutSegment(RST, 0, 0, 0))
        conn._fail(ConnEvent.TIMED_OUT)
        return
    conn.stats.timeouts += 1
    conn.timers.probe_at = None
    conn._probe_outstanding = False
    conn.cc.on_timeout(queue.pipe_bytes + queue.sacked_bytes, now)
    conn.rtt.on_timeout()
    conn._recovery_point = None
    conn._duplicate_acks = 0
    queue.mark_all_lost()
    # After a timeout that the peer did not answer either, send the head twice: on a path that
    # loses a third of all packets, one copy fails a round trip half the time, and eight failed
    # rounds in a row (the give-up rule) would end a healthy transfer every few hundred streams.
    conn._duplicate_next_retransmission = conn._timeouts_unanswered >= 2
    conn.timers.retransmit_at = now + conn.rtt.rto

def arm_probe(conn: StreamConnection, now: float) -> None:
    """Tail loss probe (RFC 8985 §7): 2·SRTT after the last activity with data in flight and
    no recovery running, probe instead of waiting for the (longer) RTO."""
    queue = conn.send_queue
    srtt = conn.rtt.srtt
    if (srtt is None or conn._probe_outstanding or conn._recovery_point is not None or not queue.pipe_bytes
            or conn.timers.retransmit_at is None):
        conn.timers.probe_at = None
        return
    timeout = 2 * srtt
    if len(queue.segments) == 1:
        timeout += conn.config.delayed_ack_timeout  # the lone segment's ACK may be delayed
    probe_at = now + max(timeout, conn.config.clock_granularity)
    conn.timers.probe_at = probe_at if probe_at < conn.timers.retransmit_at else None

def tail_loss_probe(conn: StreamConnection, now: float) -> None:
    queue = conn.send_queue
    if not queue.segments or conn.state not in SYNCHRONIZED_STATES:
        return
    conn._probe_outstanding = True
    conn.stats.tail_loss_probes += 1
    ack, units = conn.receive_queue.rcv_nxt, conn._advertise()
    peer_window = conn.peer_window_bytes
    length = min(conn.mss, queue.unsent_bytes)
    if (length and conn.state in SENDING_STATES
            and (peer_window is None or queue.unacked_bytes + length <= peer_window)):
        conn._emit_new_segment(length, now, ack, units)  # new data probes best (RFC 8985 §7.3)
    else:
        segment = queue.last_unsacked()
        if segment is None:
            return
        conn._out.append(OutSegment(segment.flags, segment.seq, ack, units, segment.payload))
        queue.on_retransmitted(segment, now)
        conn.stats.retransmissions += 1
    conn.timers.retransmit_at = now + conn.rtt.rto

def pacing_allows(conn: StreamConnection, length: int, now: float) -> bool:
    """Pacing (when the controller asks for it): spread sends at ``pacing_rate`` with bursts
    of at most ~1 ms, and arm ``pacing_at`` when the next send must wait."""
    rate = conn.cc.pacing_rate
    if rate is None or rate <= 0:
        return True
    next_at = max(conn._pacing_next_at, now - PACING_BURST_SECONDS)
    if next_at > now:
        conn.timers.pacing_at = next_at
        return False
    conn._pacing_next_at = next_at + length / rate
    return True
