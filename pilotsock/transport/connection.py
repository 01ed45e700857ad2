# SPDX-License-Identifier: Apache-2.0
"""One reliable stream (protocol 0x01) as a sans-IO machine (transport.md §1–§10, D01 §8).

Where it sits: ring 2. daemon demux -> ``on_segment`` / ``write`` / ``on_timer`` -> this machine
-> ``segments_to_send`` -> daemon (adds addresses/ports, encrypts, sends).

Theory of operation
-------------------
Inputs are decoded segment fields plus ``now`` (monotonic seconds); outputs are
:class:`OutSegment` values, :class:`ConnEvent` values and one ``next_deadline()``. The machine never
calls back into its owner and never reads a clock.

Driver loop::

    conn.on_segment(flags, seq, ack, window_units, payload, now)   # or write()/on_timer()
    for segment in conn.segments_to_send(now): send(segment)
    for event in conn.pop_events(): handle(event)
    schedule(conn.next_deadline())

Rules that differ from the Go daemons (transport.md §13) and why:
- every data segment carries ACK; a payload that parses as SACK is never data (§4, §5);
- retransmissions keep their original boundaries; the receiver trims overlaps (§4, §6);
- SACK-based recovery of several losses per window, SACK ACKs count as duplicates (§9);
- the dial completes on the SYN-ACK event, not on a poll (§3);
- FIN only after all data is acknowledged, retransmitted until acknowledged; a FIN in
  TIME_WAIT or a FIN|ACK is answered with a pure ACK, never a FIN (no FIN storm, §10);
- a window of 0 means "no limit" and is ignored; we advertise at least 1 unit (§7);
- the retransmission timer doubles as the persist timer: while the peer keeps answering, timeouts
  do not count towards give-up, and a re-opened window triggers an immediate retransmission.

Glossary (RFC 793/5681/6298/6675): ``iss`` initial send sequence; ``snd_una`` oldest unacknowledged;
``snd_nxt`` next to send; ``rcv_nxt`` next expected; ``cwnd`` congestion window; ``rto``
retransmission timeout; ``pipe`` bytes in flight; ``mss`` payload bytes per segment.
"""

from __future__ import annotations

from pilotsock.config import WINDOW_UNIT_BYTES, TransportConfig
from pilotsock.transport.closing import accept_fin, on_fin, on_fin_acknowledged
from pilotsock.transport.congestion import AUTO, CongestionController, auto_choice, make_controller
from pilotsock.transport.receive_queue import ReceiveBufferTuner, ReceiveQueue
from pilotsock.transport.recovery import (
    MAX_REORDER_STEPS,
    arm_probe,
    detect_losses,
    on_retransmit_timeout,
    pacing_allows,
    tail_loss_probe,
)
from pilotsock.transport.rtt import RttEstimator
from pilotsock.transport.send_queue import SendQueue, SentSegment
from pilotsock.transport.seqnum import SEQ_MASK, seq_diff, seq_ge, seq_gt, seq_le
from pilotsock.transport.states import (
    RECEIVING_STATES,
    SENDING_STATES,
    SYNCHRONIZED_STATES,
    TRANSITIONS,
    ConnEvent,
    OutSegment,
    State,
)
from pilotsock.transport.timers import AckState, CloseState, ConnectionStats, ConnectionTimers, HandshakeState
from pilotsock.wire.header import Flag
from pilotsock.wire.sack import decode_sack, encode_sack, is_sack_payload

SYN = int(Flag.SYN)
ACK = int(Flag.ACK)
FIN = int(Flag.FIN)
RST = int(Flag.RST)
__all__ = ["ACK", "FIN", "RST", "SYN", "TRANSITIONS", "ConnEvent", "OutSegment", "State", "StreamConnection"]
SACK_SPLIT_BYTES = 4  # transport.md §4: send the first 4 bytes of a SACK-looking payload alone
MAX_EXTRA_SACKS = 3  # extra pure ACKs per flush when more blocks changed than one SACK holds


class StreamConnection:
    """A stream endpoint. Create it, then call ``open_active`` (dial) or ``open_passive`` (SYN)."""

    def __init__(self, config: TransportConfig, *, iss: int = 0, nodelay: bool = False) -> None:
        self.config = config
        self.state = State.CLOSED
        self.iss = iss & SEQ_MASK
        self.snd_una = self.iss
        self.snd_nxt = self.iss
        self.nodelay = nodelay
        self.mss = config.mss  # payload bytes per segment; the driver may raise it per path (use_mss)
        self.send_queue = SendQueue(config.send_buffer_bytes)
        self.receive_queue = ReceiveQueue(min(config.receive_buffer_initial_bytes, config.receive_buffer_bytes))
        self._receive_tuner = ReceiveBufferTuner(self.receive_queue, config.receive_buffer_bytes)
        self.rtt = RttEstimator(
            initial=config.rto_initial, minimum=config.rto_min, maximum=config.rto_max,
            granularity=config.clock_granularity,
        )
        # "auto" decides at the end of the handshake; nothing is sent under control before.
        self.cc = self._make_controller("newreno" if config.congestion_control == AUTO else config.congestion_control)
        self.peer_window_bytes: int | None = None  # None: no limit announced yet
        self._out: list[OutSegment] = []
        self._events: list[ConnEvent] = []
        self._handshake = HandshakeState()
        self._close = CloseState()
        self._ack = AckState()
        self._recovery_point: int | None = None
        self._duplicate_acks = 0
        self._timeouts_unanswered = 0
        self._duplicate_next_retransmission = False
        self._heard_since_timeout = False
        self._last_peer_units = 0
        self._last_advertised_units = 0
        self._largest_segment_received = 0
        self._answering = False  # Linux's "pingpong": we answer the peer's data within the short ACK delay
        self._data_received_at = -1.0
        self._probe_outstanding = False
        self._pacing_next_at = 0.0
        self._reorder_steps = 1  # RACK reorder window = steps x min_rtt / 4 (grows on reordering)
        self.last_received_at = 0.0
        self.timers = ConnectionTimers()
        self.stats = ConnectionStats()

    # -- queries ----------------------------------------------------------------------------

    @property
    def send_space(self) -> int:
        """Bytes ``write`` would accept now (0 once the write side is closed)."""
        return self.send_queue.space_bytes(self._send_limit())

    def _send_limit(self) -> int:
        """Unsent plus unacknowledged bytes we hold at most: 0 once the write side is closed, else
        autotuned like Linux's: two windows (cwnd or peer's); the rest waits in the app's socket."""
        if self._close.fin_requested or self.state not in SENDING_STATES:
            return 0
        window = min(self.cc.window_bytes, self.peer_window_bytes or self.cc.window_bytes)
        return max(self.config.send_buffer_min_bytes, 2 * window)

    @property
    def readable_bytes(self) -> int:
        return self.receive_queue.ready_bytes

    @property
    def peer_finished(self) -> bool:
        return self._close.peer_fin_received

    @property
    def is_closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def all_data_acknowledged(self) -> bool:
        return self.send_queue.unsent_bytes == 0 and self.send_queue.unacked_bytes == 0

    def pop_events(self) -> list[ConnEvent]:
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float | None:
        return self.timers.earliest()

    # -- application inputs -----------------------------------------------------------------

    def open_active(self, now: float) -> None:
        """Dial: send SYN (seq = ISN, ack 0, window = our free units)."""
        self._set_state(State.SYN_SENT)
        self.snd_nxt = (self.iss + 1) & SEQ_MASK
        self.last_received_at = now
        self._handshake.due = True
        self._handshake.sent_at = now
        self.timers.retransmit_at = now + self.config.syn_retry_schedule[0]

    def open_passive(self, syn_seq: int, window_units: int, now: float) -> None:
        """Answer a SYN: SYN_RECEIVED until an ACK of our ISN arrives (kernel semantics)."""
        self._set_state(State.SYN_RECEIVED)
        self.receive_queue.reset((syn_seq + 1) & SEQ_MASK)
        self._update_peer_window(window_units)
        self.snd_nxt = (self.iss + 1) & SEQ_MASK
        self.last_received_at = now
        self._handshake.due = True
        self._handshake.sent_at = now
        self.timers.retransmit_at = now + self.config.syn_retry_schedule[0]

    def write(self, data: bytes | bytearray | memoryview, now: float) -> int:
        """Queue application bytes; returns how many were taken (see ``send_space``)."""
        return self.send_queue.write(data, self._send_limit())

    def consume_received(self, count: int, now: float) -> None:
        """The owner delivered ``count`` bytes from ``receive_queue.peek()`` to the application."""
        self.receive_queue.consume(count)
        self._on_consumed(count, now)

    def take_received(self, max_bytes: int | None = None, now: float | None = None) -> bytes:
        """Remove and return in-order bytes (alternative to peek/consume). With ``now``, what
        was taken counts as the application's reading for receive buffer autotuning."""
        data = self.receive_queue.take(max_bytes)
        self._on_consumed(len(data), now)
        return data

    def _on_consumed(self, count: int, now: float | None) -> None:
        if now is not None:
            interval = max(self.rtt.srtt or 0.0, self.config.autotune_min_interval)
            self._receive_tuner.on_consumed(count, now, interval)
        self._maybe_window_update()

    def shutdown_write(self, now: float) -> None:
        """The application finished writing: FIN once everything sent is acknowledged."""
        if self._close.fin_requested:
            return
        if self.state in (State.SYN_SENT, State.SYN_RECEIVED):
            self.abort(now)
            return
        if self.state in SENDING_STATES:
            self._close.fin_requested = True

    def orphan(self, now: float) -> None:
        """The application closed its socket completely (nothing will read): FIN after the data,
        and in FIN_WAIT_2 wait at most ``orphan_fin_wait_2_timeout`` for the peer's FIN."""
        self._close.orphaned = True
        self.shutdown_write(now)
        self._arm_orphan(now)

    def _arm_orphan(self, now: float) -> None:
        if self._close.orphaned and self.state is State.FIN_WAIT_2 and self.timers.orphan_at is None:
            self.timers.orphan_at = now + self.config.orphan_fin_wait_2_timeout

    @property
    def orphaned(self) -> bool:
        return self._close.orphaned

    def abort(self, now: float) -> None:
        """Send RST (if synchronized) and drop all state."""
        if self.state in SYNCHRONIZED_STATES or self.state is State.SYN_RECEIVED:
            self._out.append(OutSegment(RST, 0, 0, 0))
        self._enter_closed()

    # -- network inputs ---------------------------------------------------------------------

    def on_segment(self, flags: int, seq: int, ack: int, window_units: int,
                   payload: bytes | memoryview, now: float) -> None:
        """Process one received segment addressed to this connection."""
        state = self.state
        if state is State.CLOSED:
            return
        self.last_received_at = now
        self._heard_since_timeout = True
        self.stats.segments_received += 1
        if state not in (State.SYN_SENT, State.SYN_RECEIVED, State.TIME_WAIT):
            self.timers.idle_at = now + self.config.idle_timeout
            self.timers.keepalive_at = now + self.config.keepalive_interval
        if flags & RST:
            self._on_reset()
            return
        if state is State.SYN_SENT:
            self._on_segment_syn_sent(flags, seq, ack, window_units, now)
            return
        if flags & SYN:
            if state is State.SYN_RECEIVED and not flags & ACK:
                self._handshake.due = True  # duplicate SYN: resend SYN-ACK
            elif state is not State.SYN_RECEIVED:
                self._ack.now = True  # duplicate SYN-ACK after we finished: re-ACK (pure ACK)
            return
        if state is State.SYN_RECEIVED:
            if not flags & ACK or ack != self.snd_nxt:
                return
            self._complete_open(now)
        elif state is State.TIME_WAIT:
            if flags & FIN:
                self._ack.now = True  # never a FIN, never a TIME_WAIT restart (§10 rule 5)
            return
        if flags & ACK:
            self._process_ack(ack, window_units, payload, now)
            if self.state is State.CLOSED:
                return
        is_data = len(payload) > 0 and not is_sack_payload(payload)
        if is_data:
            self._receive_data(seq, payload, now)
        if flags & FIN:
            fin_seq = (seq + (len(payload) if is_data else 0)) & SEQ_MASK
            on_fin(self, fin_seq, bool(flags & ACK), now)

    def on_timer(self, now: float) -> None:
        """Fire every deadline that is due. Call ``segments_to_send`` afterwards."""
        timers = self.timers
        if timers.time_wait_until is not None and now >= timers.time_wait_until:
            timers.time_wait_until = None
            self._enter_closed()
            return
        if timers.idle_at is not None and now >= timers.idle_at:
            self._out.append(OutSegment(RST, 0, 0, 0))
            self._fail(ConnEvent.TIMED_OUT)
            return
        if timers.orphan_at is not None and now >= timers.orphan_at:
            self.abort(now)  # RST: the peer learns nobody will read what it still sends
            return
        if timers.fin_gap_at is not None and now >= timers.fin_gap_at:
            self._out.append(OutSegment(RST, 0, 0, 0))
            self._fail(ConnEvent.RESET)
            return
        if timers.retransmit_at is not None and now >= timers.retransmit_at:
            timers.retransmit_at = None
            on_retransmit_timeout(self, now)
            if self.state is State.CLOSED:
                return
        if timers.pacing_at is not None and now >= timers.pacing_at:
            timers.pacing_at = None  # segments_to_send continues the paced flight
        if timers.probe_at is not None and now >= timers.probe_at:
            timers.probe_at = None
            tail_loss_probe(self, now)
        if timers.delayed_ack_at is not None and now >= timers.delayed_ack_at:
            timers.delayed_ack_at = None
            self._ack.now = True
            self._answering = False  # no prompt answer this time: ACK short writes at once again
        if timers.nagle_at is not None and now >= timers.nagle_at:
            timers.nagle_at = None
            self._close.nagle_expired = True
        if timers.keepalive_at is not None and now >= timers.keepalive_at:
            timers.keepalive_at = now + self.config.keepalive_interval
            if self.state in SYNCHRONIZED_STATES:
                self._ack.keepalive = True

    # -- output -----------------------------------------------------------------------------

    def segments_to_send(self, now: float) -> list[OutSegment]:
        """Everything to transmit now, in order. The caller adds addresses and ports."""
        state = self.state
        if state is State.SYN_SENT and self._handshake.due:
            self._handshake.due = False
            self._out.append(OutSegment(SYN, self.iss, 0, self._advertise()))
        elif state is State.SYN_RECEIVED and self._handshake.due:
            self._handshake.due = False
            self._out.append(OutSegment(SYN | ACK, self.iss, self.receive_queue.rcv_nxt, self._advertise()))
        elif state in SYNCHRONIZED_STATES:
            carried_ack = self._send_data(now)
            if carried_ack and now - self._data_received_at <= self.config.short_segment_ack_delay:
                self._answering = True
            if self._ack.now or self._ack.keepalive or self._ack.window_update:
                if not carried_ack or self.receive_queue.has_out_of_order or self._ack.keepalive:
                    self._out.append(self._pure_ack())
                    for _ in range(MAX_EXTRA_SACKS):  # more changed blocks than one ACK holds
                        if not self.receive_queue.has_unreported_blocks:
                            break
                        self._out.append(self._pure_ack())
                self._clear_ack_state()
            elif carried_ack:
                self._clear_ack_state()
        elif state is State.TIME_WAIT and self._ack.now:
            self._out.append(self._pure_ack())
            self._clear_ack_state()
        out, self._out = self._out, []
        self.stats.segments_sent += len(out)
        return out

    # -- handshake --------------------------------------------------------------------------

    def _on_segment_syn_sent(self, flags: int, seq: int, ack: int, window_units: int, now: float) -> None:
        if flags & (SYN | ACK) != SYN | ACK or ack != self.snd_nxt:
            return
        self.receive_queue.reset((seq + 1) & SEQ_MASK)
        self._update_peer_window(window_units)
        self._complete_open(now)
        self._ack.now = True

    def _make_controller(self, name: str, max_window_bytes: int | None = None) -> CongestionController:
        config = self.config
        self._cc_choice = (name, max_window_bytes)
        return make_controller(name, mss=self.mss, initial_window_bytes=config.initial_cwnd_segments * self.mss,
                               max_window_bytes=max_window_bytes or config.max_cwnd_bytes)

    def use_mss(self, mss: int) -> None:
        """Send segments of ``mss`` payload bytes from now on (a path that carries more than the
        Internet-safe default, such as loopback); the receiver accepts any size."""
        self.mss = mss
        if self.stats.bytes_sent == 0:  # nothing sent under control yet: IW10 of the new size
            self.cc = self._make_controller(*self._cc_choice)
        else:
            self.cc.mss = mss

    def _complete_open(self, now: float) -> None:
        """Our SYN (or SYN-ACK) was acknowledged: ESTABLISHED."""
        self.snd_una = self.snd_nxt
        handshake_rtt = now - self._handshake.sent_at if self._handshake.transmissions == 1 else None
        if handshake_rtt is not None:
            self.rtt.on_sample(handshake_rtt)
        config = self.config
        if config.congestion_control == AUTO:
            name = auto_choice(handshake_rtt, bbr_min_rtt=config.auto_bbr_min_rtt)
            self.cc = self._make_controller(
                name, None if name == "bbr" else min(config.max_cwnd_bytes, config.low_rtt_max_cwnd_bytes))
        self.timers.retransmit_at = None
        self._set_state(State.ESTABLISHED)
        self._arm_liveness(now)
        self._events.append(ConnEvent.ESTABLISHED)

    def _arm_liveness(self, now: float) -> None:
        self.timers.keepalive_at = now + self.config.keepalive_interval
        self.timers.idle_at = now + self.config.idle_timeout

    # -- acknowledgments, SACK and loss recovery --------------------------------------------

    def _process_ack(self, ack: int, window_units: int, payload: bytes | memoryview, now: float) -> None:
        sack_blocks = decode_sack(payload) if is_sack_payload(payload) else None
        previous_window = self.peer_window_bytes
        queue = self.send_queue
        queue.newest_delivered = None
        queue.spurious_threshold = (self.rtt.min_rtt or 0.0) / 2
        spurious_before = queue.spurious_retransmissions
        if seq_gt(ack, self.snd_una) and seq_le(ack, self.snd_nxt):
            acked_bytes = seq_diff(ack, self.snd_una)
            queue.acknowledge(ack, now)
            self.snd_una = ack
            self.rtt.reset_backoff()
            self._timeouts_unanswered = 0
            self._duplicate_acks = 0
            self._probe_outstanding = False
            in_recovery = self._recovery_point is not None
            self.cc.on_acked(acked_bytes, now, in_recovery=in_recovery)
            if in_recovery:
                assert self._recovery_point is not None
                if seq_ge(ack, self._recovery_point):
                    self._recovery_point = None
                elif not sack_blocks and queue.segments:
                    queue.mark_lost(queue.segments[0])  # NewReno partial ACK (RFC 6582)
            on_fin_acknowledged(self, ack, now)
            if self.state is State.CLOSED:
                return
            self.timers.retransmit_at = now + self.rtt.rto if queue.segments else None
        elif ack == self.snd_una and queue.segments and (not payload or sack_blocks):
            if window_units == self._last_peer_units:
                self._duplicate_acks += 1
        self._update_peer_window(window_units)
        if sack_blocks:
            queue.apply_sack(sack_blocks, self.snd_una, now)
        # One RTT sample per ACK, from the most recently transmitted segment it delivers, and only
        # if that segment was sent once (Karn). Older segments acknowledged only now (their ACK
        # waited behind a hole) would measure recovery time, not the path.
        newest = queue.newest_delivered
        if newest is not None and newest.transmissions == 1:
            self.rtt.on_sample(now - newest.last_sent_at)
        if newest is not None and queue.segments:
            # The peer is alive and delivering (cumulatively or by SACK): RACK handles losses
            # inside the flight, so restart the RTO rather than let a hole at snd_una time out
            # the whole flight (RFC 8985 §8 keeps the RTO as the last resort).
            self.timers.retransmit_at = now + self.rtt.rto
        if queue.spurious_retransmissions > spurious_before:
            self._reorder_steps = min(self._reorder_steps + 1, MAX_REORDER_STEPS)  # RFC 8985 §6.2
            self.stats.spurious_retransmissions += queue.spurious_retransmissions - spurious_before
        sample = queue.rate_sample(now)
        if sample is not None:
            self.cc.on_rate_sample(sample, now, min_rtt=self.rtt.min_rtt, delivered=queue.delivered,
                                   inflight=queue.pipe_bytes)
        detect_losses(self, now)
        if (previous_window is not None and self.peer_window_bytes is not None
                and self.peer_window_bytes > previous_window
                and previous_window <= 2 * WINDOW_UNIT_BYTES and queue.segments):
            # The window re-opened while our data waits: retransmit the head now instead of
            # waiting for the (possibly backed-off) timer. Loop-free: it is data, not an ACK.
            head = queue.segments[0]
            if not head.sacked and now - head.last_sent_at >= (self.rtt.srtt or 0.0):
                queue.mark_lost(head)

    # -- sending ----------------------------------------------------------------------------

    def _send_data(self, now: float) -> bool:
        """Retransmit lost segments, send new data, then FIN. Returns True if any segment
        went out (each carries the current ACK)."""
        queue = self.send_queue
        cwnd = self.cc.window_bytes
        sent_any = False
        ack = self.receive_queue.rcv_nxt
        units = self._advertise()
        while queue.lost_count:
            segment = queue.first_lost()
            if segment is None or (queue.pipe_bytes > 0 and queue.pipe_bytes + segment.length > cwnd):
                break
            if not pacing_allows(self, segment.length, now):
                break
            self._out.append(OutSegment(segment.flags, segment.seq, ack, units, segment.payload))
            if self._duplicate_next_retransmission:
                self._duplicate_next_retransmission = False
                self._out.append(self._out[-1])
            queue.on_retransmitted(segment, now)
            self.stats.retransmissions += 1
            sent_any = True
        if self.state in SENDING_STATES:
            sent_any |= self._send_new_data(now, cwnd, ack, units)
            if (self._close.fin_requested and not self._close.fin_sent
                    and queue.unsent_bytes == 0 and queue.unacked_bytes == 0):
                self._send_fin(now, ack, units)
                sent_any = True
        if queue.segments and self.timers.retransmit_at is None:
            self.timers.retransmit_at = now + self.rtt.rto
        arm_probe(self, now)
        return sent_any

    def _send_new_data(self, now: float, cwnd: int, ack: int, units: int) -> bool:
        queue = self.send_queue
        mss = self.mss
        peer_window = self.peer_window_bytes
        sent_any = False
        while queue.unsent_bytes:
            length = min(mss, queue.unsent_bytes)
            if queue.pipe_bytes > 0 and queue.pipe_bytes + length > cwnd:
                break
            if not pacing_allows(self, length, now):
                break
            if peer_window is not None and queue.unacked_bytes > 0 and queue.unacked_bytes + length > peer_window:
                # The receiver's window, not the path, limits this flight: its rate samples must
                # not look like a full pipe (BBR would leave startup at a growing window's pace).
                queue.app_limited_until = max(queue.delivered + queue.pipe_bytes, 1)
                break
            if (length < mss and not self.nodelay and queue.unacked_bytes > 0
                    and not self._close.fin_requested and not self._close.nagle_expired):
                if self.timers.nagle_at is None:
                    self.timers.nagle_at = now + self.config.nagle_timeout
                break
            self._emit_new_segment(length, now, ack, units)
            sent_any = True
        if queue.unsent_bytes == 0 or sent_any:
            self.timers.nagle_at = None
            self._close.nagle_expired = False
        if queue.unsent_bytes == 0 and queue.pipe_bytes < cwnd:
            # The application, not the network, limits the rate: mark samples until this flight
            # is delivered so they cannot lower the bandwidth estimate.
            queue.app_limited_until = max(queue.delivered + queue.pipe_bytes, 1)
        return sent_any

    def _emit_new_segment(self, length: int, now: float, ack: int, units: int) -> None:
        queue = self.send_queue
        if is_sack_payload(queue.peek_unsent(length)):
            length = SACK_SPLIT_BYTES
        payload = queue.take_unsent(length)
        queue.on_sent(SentSegment(self.snd_nxt, payload, ACK, length, now))
        self.cc.on_sent(length, now)
        self._out.append(OutSegment(ACK, self.snd_nxt, ack, units, payload))
        self.snd_nxt = (self.snd_nxt + length) & SEQ_MASK
        self.stats.bytes_sent += length

    def _send_fin(self, now: float, ack: int, units: int) -> None:
        segment = SentSegment(self.snd_nxt, b"", FIN | ACK, 1, now)
        self.send_queue.on_sent(segment)
        self._out.append(OutSegment(FIN | ACK, self.snd_nxt, ack, units))
        self._close.fin_sent = True
        self._close.fin_seq = self.snd_nxt
        self.snd_nxt = (self.snd_nxt + 1) & SEQ_MASK
        self._set_state(State.FIN_WAIT_1 if self.state is State.ESTABLISHED else State.LAST_ACK)

    def _pure_ack(self) -> OutSegment:
        blocks = self.receive_queue.sack_blocks()
        payload = encode_sack(blocks) if blocks else b""
        return OutSegment(ACK, self.snd_nxt, self.receive_queue.rcv_nxt, self._advertise(), payload)

    def _advertise(self) -> int:
        units = self.receive_queue.advertised_units()
        self._last_advertised_units = units
        return units

    def _clear_ack_state(self) -> None:
        self._ack.now = False
        self._ack.keepalive = False
        self._ack.window_update = False
        self._ack.unacked_segments = 0
        self.timers.delayed_ack_at = None

    def _delay_ack(self, now: float, delay: float) -> None:
        """ACK within ``delay`` unless an earlier deadline (or something we send) covers it."""
        due = self.timers.delayed_ack_at
        self.timers.delayed_ack_at = now + delay if due is None else min(due, now + delay)

    def _maybe_window_update(self) -> None:
        """Fix for the Go 1.18 zero-window deadlock: announce a window that re-opened."""
        if self.state not in SYNCHRONIZED_STATES:
            return
        capacity = self.receive_queue.capacity_bytes
        quarter_units = max(1, capacity // 4 // WINDOW_UNIT_BYTES)
        last = self._last_advertised_units
        if (last < 2 or last < quarter_units) and self.receive_queue.advertised_units() >= quarter_units:
            self._ack.window_update = True

    # -- receiving --------------------------------------------------------------------------

    def _receive_data(self, seq: int, payload: bytes | memoryview, now: float) -> None:
        if self.state not in RECEIVING_STATES or self._close.peer_fin_received:
            self._ack.now = True
            return
        queue = self.receive_queue
        had_gap = queue.has_out_of_order
        in_order = seq == queue.rcv_nxt
        beyond_before = queue.beyond_window
        added, accepted = queue.insert(seq, payload)
        self.stats.bytes_received += added
        if not accepted and payload:
            if queue.beyond_window != beyond_before:
                self.stats.beyond_window_segments += 1
            else:
                self.stats.duplicate_segments += 1
        length = len(payload)
        short = length < (self._largest_segment_received or self.mss)
        if length > self._largest_segment_received:
            self._largest_segment_received = length
        if not accepted or not in_order or had_gap or queue.has_out_of_order:
            self._ack.now = True  # duplicate, beyond window, out of order or filling a gap
        elif short and not self._answering:
            # A segment shorter than the peer's largest ends a write: ACK at once so a Nagle
            # sender releases its next small write (the write-write-read stall of HTTP).
            self._ack.now = True
        else:
            # Every second full segment is ACKed, or after 40 ms; a short one (we answer promptly)
            # after 2 ms unless the answer carries it: no pure ACK datagram per request.
            if not short:
                self._ack.unacked_segments += 1
            if self._ack.unacked_segments >= self.config.delayed_ack_segments:
                self._ack.now = True
            else:
                self._delay_ack(now, self.config.short_segment_ack_delay if short else self.config.delayed_ack_timeout)
        if accepted and length:
            self._data_received_at = now
        pending_fin = self._close.pending_fin_seq
        if pending_fin is not None and queue.rcv_nxt == pending_fin:
            self._close.pending_fin_seq = None
            self.timers.fin_gap_at = None
            accept_fin(self, self._close.pending_fin_has_ack, now)

    def _on_reset(self) -> None:
        if self.state is State.TIME_WAIT:
            self._enter_closed()
        elif self.state is State.SYN_SENT:
            self._fail(ConnEvent.REFUSED)
        elif self.state is State.SYN_RECEIVED:
            self._enter_closed()
        else:
            self._fail(ConnEvent.RESET)

    # -- state changes ----------------------------------------------------------------------

    def _set_state(self, new: State) -> None:
        if new is not self.state and new not in TRANSITIONS[self.state]:
            raise RuntimeError(f"illegal transition {self.state.value} -> {new.value}")
        self.state = new

    def _update_peer_window(self, window_units: int) -> None:
        if window_units:  # 0 means "no limit" (Go keepalives, FINs, RSTs): keep the last limit
            self.peer_window_bytes = window_units * WINDOW_UNIT_BYTES
            self._last_peer_units = window_units

    def _enter_time_wait(self, now: float) -> None:
        self._set_state(State.TIME_WAIT)
        self.timers.clear()
        self.timers.time_wait_until = now + self.config.time_wait_seconds

    def _fail(self, event: ConnEvent) -> None:
        self._events.append(event)
        self._enter_closed()

    def _enter_closed(self) -> None:
        if self.state is State.CLOSED and ConnEvent.CLOSED in self._events:
            return
        self.state = State.CLOSED
        self.timers.clear()
        self._events.append(ConnEvent.CLOSED)
