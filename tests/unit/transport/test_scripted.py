"""Scripted exchanges: exact segments, flags, seq/ack and deadlines at each hop."""

import pytest

from pilotsock.config import TransportConfig
from pilotsock.transport.connection import ACK, FIN, RST, SYN, ConnEvent, OutSegment, State, StreamConnection
from pilotsock.wire.sack import decode_sack, is_sack_payload

CONFIG = TransportConfig(mss=1000, receive_buffer_bytes=64 * 4096)


def dialer(now: float = 0.0, iss: int = 0) -> StreamConnection:
    conn = StreamConnection(CONFIG, iss=iss)
    conn.open_active(now)
    return conn


def established_pair(now: float = 0.0) -> tuple[StreamConnection, StreamConnection]:
    client = dialer(now, iss=100)
    syn = client.segments_to_send(now)[0]
    server = StreamConnection(CONFIG, iss=500)
    server.open_passive(syn.seq, syn.window_units, now)
    synack = server.segments_to_send(now)[0]
    client.on_segment(synack.flags, synack.seq, synack.ack, synack.window_units, b"", now)
    ack = client.segments_to_send(now)[0]
    server.on_segment(ack.flags, ack.seq, ack.ack, ack.window_units, b"", now)
    client.pop_events()
    server.pop_events()
    return client, server


def deliver(segments: list[OutSegment], to: StreamConnection, now: float) -> None:
    for s in segments:
        to.on_segment(s.flags, s.seq, s.ack, s.window_units, s.payload, now)


def test_dial_sends_syn_then_acks_syn_ack_and_only_keepalive_remains() -> None:
    client = dialer(0.0)
    assert client.segments_to_send(0.0) == [OutSegment(SYN, 0, 0, 64)]
    assert client.next_deadline() == 1.0
    client.on_segment(SYN | ACK, 7000, 1, 512, b"", 0.05)
    assert client.pop_events() == [ConnEvent.ESTABLISHED]
    assert client.segments_to_send(0.05) == [OutSegment(ACK, 1, 7001, 64)]
    assert client.state is State.ESTABLISHED
    assert client.next_deadline() == pytest.approx(30.05)  # keepalive; idle close at 120 s
    assert client.peer_window_bytes == 512 * 4096


def test_lost_syn_is_retransmitted_on_the_go_schedule_then_times_out() -> None:
    client = dialer(0.0)
    times = []
    now = 0.0
    sent = len(client.segments_to_send(now))
    while client.state is State.SYN_SENT:
        now = client.next_deadline()  # type: ignore[assignment]
        client.on_timer(now)
        segments = client.segments_to_send(now)
        if segments and segments[0].flags == SYN:
            times.append(now)
            sent += 1
    assert times == [1.0, 3.0, 7.0, 15.0, 23.0, 31.0]
    assert sent == 7
    assert now == 39.0
    assert client.pop_events() == [ConnEvent.TIMED_OUT, ConnEvent.CLOSED]


def test_rst_while_dialing_is_refused() -> None:
    client = dialer()
    client.segments_to_send(0.0)
    client.on_segment(RST, 0, 0, 0, b"", 0.01)
    assert client.pop_events() == [ConnEvent.REFUSED, ConnEvent.CLOSED]


def test_responder_is_established_only_after_the_ack() -> None:
    server = StreamConnection(CONFIG, iss=0)
    server.open_passive(41, 0, 0.0)
    assert server.segments_to_send(0.0) == [OutSegment(SYN | ACK, 0, 42, 64)]
    assert server.pop_events() == []
    server.on_segment(SYN, 41, 0, 0, b"", 0.5)  # duplicate SYN: SYN-ACK again
    assert server.segments_to_send(0.5) == [OutSegment(SYN | ACK, 0, 42, 64)]
    server.on_segment(ACK, 42, 1, 0, b"", 0.6)
    assert server.pop_events() == [ConnEvent.ESTABLISHED]
    assert server.peer_window_bytes is None  # window 0 = no limit, never "closed"


def test_delayed_ack_after_two_segments_or_40ms() -> None:
    client, server = established_pair()
    client.write(b"x" * 1000, 0.0)
    deliver(client.segments_to_send(0.0), server, 0.01)
    assert server.segments_to_send(0.01) == []
    assert server.next_deadline() == pytest.approx(0.05)
    server.on_timer(0.05)
    assert server.segments_to_send(0.05) == [OutSegment(ACK, 501, 1101, 63)]
    client.write(b"y" * 2000, 0.1)
    deliver(client.segments_to_send(0.1), server, 0.11)
    assert [s.ack for s in server.segments_to_send(0.11)] == [3101]


def test_short_segment_is_acked_at_once() -> None:
    client, server = established_pair()
    client.write(b"GET / HTTP/1.1\r\n\r\n", 0.0)
    deliver(client.segments_to_send(0.0), server, 0.01)
    assert [s.flags for s in server.segments_to_send(0.01)] == [ACK]


def test_a_connection_that_answers_promptly_lets_its_answer_carry_the_ack() -> None:
    """Request/response: once our data left within ``short_segment_ack_delay`` of the peer's,
    a short request waits that long for the answer to carry its ACK (no pure ACK per request);
    when no answer comes in time the ACK goes alone and short writes are ACKed at once again."""
    client, server = established_pair()
    client.nodelay = server.nodelay = True
    delay = CONFIG.short_segment_ack_delay
    client.write(b"hello" * 20, 0.0)  # pings are short writes after this one
    deliver(client.segments_to_send(0.0), server, 0.0)
    deliver(server.segments_to_send(0.0), client, 0.0)
    server.take_received()
    now = 0.1
    for request in range(4):
        client.write(b"ping", now)
        deliver(client.segments_to_send(now), server, now)
        answer = server.segments_to_send(now)
        if request == 0:
            assert [(s.flags, len(s.payload)) for s in answer] == [(ACK, 0)]  # not answering yet
        else:
            assert answer == []
        server.take_received()
        server.write(b"pong", now + delay / 2)
        [reply] = server.segments_to_send(now + delay / 2)
        assert (reply.ack, reply.payload) == (client.snd_nxt, b"pong")
        deliver([reply], client, now + delay / 2)
        client.take_received()
        now += 0.1
    client.write(b"ping", now)
    deliver(client.segments_to_send(now), server, now)
    assert server.next_deadline() == pytest.approx(now + delay)
    server.on_timer(now + delay)  # the application kept quiet
    assert [s.flags for s in server.segments_to_send(now + delay)] == [ACK]
    client.write(b"ping", now + 0.1)
    deliver(client.segments_to_send(now + 0.1), server, now + 0.1)
    assert [s.flags for s in server.segments_to_send(now + 0.1)] == [ACK]


def test_nagle_holds_a_small_segment_until_acked_and_nodelay_does_not() -> None:
    client, server = established_pair()
    client.write(b"a" * 10, 0.0)
    assert len(client.segments_to_send(0.0)) == 1
    client.write(b"b" * 10, 0.001)
    assert client.segments_to_send(0.001) == []
    assert client.next_deadline() == pytest.approx(0.041)
    client.nodelay = True
    client.write(b"c" * 10, 0.002)
    assert [len(s.payload) for s in client.segments_to_send(0.002)] == [20]


def test_out_of_order_gets_immediate_sack_with_at_most_four_blocks_per_ack() -> None:
    client, server = established_pair()
    client.write(b"z" * 10000, 0.0)
    segments = client.segments_to_send(0.0)
    assert len(segments) == 10
    deliver([segments[i] for i in (1, 3, 5, 7, 9)], server, 0.01)
    acks = server.segments_to_send(0.01)
    # Five blocks changed in one batch: two ACKs, so none of them goes unreported.
    assert len(acks) == 2 and all(a.ack == 101 and is_sack_payload(a.payload) for a in acks)
    blocks = decode_sack(acks[0].payload)
    assert len(blocks) == 4
    assert blocks[0] == (101 + 9000, 101 + 10000)  # the most recent block first
    assert decode_sack(acks[1].payload)[0] == (101 + 1000, 101 + 2000)  # the one that did not fit


def test_sack_recovery_retransmits_every_hole_with_original_boundaries() -> None:
    client, server = established_pair()
    client.write(b"q" * 10000, 0.0)
    segments = client.segments_to_send(0.0)
    deliver([s for i, s in enumerate(segments) if i not in (2, 5)], server, 0.01)
    deliver(server.segments_to_send(0.01), client, 0.02)
    retransmitted = client.segments_to_send(0.02)
    assert [(s.seq, len(s.payload)) for s in retransmitted] == [
        (segments[2].seq, 1000), (segments[5].seq, 1000)]
    assert client.stats.fast_retransmits == 1
    deliver(retransmitted, server, 0.03)
    assert server.take_received() == b"q" * 10000


def test_close_sends_fin_only_after_all_data_is_acked_and_time_wait_never_answers_with_fin() -> None:
    client, server = established_pair()
    client.write(b"data", 0.0)
    client.shutdown_write(0.0)
    first = client.segments_to_send(0.0)
    assert [s.flags for s in first] == [ACK]  # the data, not yet a FIN
    deliver(first, server, 0.01)
    deliver(server.segments_to_send(0.01), client, 0.02)
    fin = client.segments_to_send(0.02)
    assert fin == [OutSegment(FIN | ACK, 105, 501, 64)]
    assert client.state is State.FIN_WAIT_1
    deliver(fin, server, 0.03)
    assert server.pop_events() == [ConnEvent.PEER_EOF]
    assert server.state is State.CLOSE_WAIT
    assert server.segments_to_send(0.03) == []  # the application may close at once: wait for its FIN
    assert server.next_deadline() == pytest.approx(0.03 + CONFIG.short_segment_ack_delay)
    server.on_timer(0.03 + CONFIG.short_segment_ack_delay)  # it did not
    assert server.segments_to_send(0.033) == [OutSegment(ACK, 501, 106, 63)]
    server.shutdown_write(0.04)
    server_fin = server.segments_to_send(0.04)
    assert [s.flags for s in server_fin] == [FIN | ACK]
    deliver(server.segments_to_send(0.04) + server_fin, client, 0.05)
    assert client.state is State.TIME_WAIT
    final = client.segments_to_send(0.05)
    assert final == [OutSegment(ACK, 106, 502, 64)]
    # A duplicate FIN in TIME_WAIT gets a pure ACK, never a FIN, and TIME_WAIT is not restarted.
    deliver(server_fin, client, 5.0)
    assert [s.flags for s in client.segments_to_send(5.0)] == [ACK]
    assert client.next_deadline() == pytest.approx(10.05)
    deliver(final, server, 0.06)
    assert server.pop_events() == [ConnEvent.CLOSED]
    client.on_timer(10.05)
    assert client.pop_events()[-1] is ConnEvent.CLOSED


def test_a_prompt_close_after_eof_carries_the_ack_of_the_peers_fin() -> None:
    client, server = established_pair()
    client.shutdown_write(0.0)
    deliver(client.segments_to_send(0.0), server, 0.01)
    assert server.pop_events() == [ConnEvent.PEER_EOF]
    server.shutdown_write(0.0105)
    assert server.segments_to_send(0.0105) == [OutSegment(FIN | ACK, 501, 102, 64)]
    assert server.timers.delayed_ack_at is None


def test_go_style_fin_without_ack_is_a_full_close() -> None:
    client, server = established_pair()
    server.on_segment(FIN, 101, 0, 0, b"", 0.1)
    assert server.pop_events() == [ConnEvent.PEER_EOF, ConnEvent.PEER_GONE]
    assert server.state is State.TIME_WAIT
    assert [s.flags for s in server.segments_to_send(0.1)] == [ACK]


def test_fin_after_a_gap_waits_then_resets() -> None:
    client, server = established_pair()
    server.on_segment(FIN | ACK, 101 + 500, 501, 10, b"", 0.1)  # 500 bytes never arrive
    assert server.pop_events() == []
    deadline = server.next_deadline()
    assert deadline is not None and deadline <= 0.1 + 2 * 1.0 + 1e-9
    server.on_timer(2.1)
    assert server.pop_events() == [ConnEvent.RESET, ConnEvent.CLOSED]


def test_keepalive_then_idle_timeout() -> None:
    client, server = established_pair()
    client.on_timer(30.0)
    assert [s.flags for s in client.segments_to_send(30.0)] == [ACK]
    client.on_timer(120.0)
    assert [s.flags for s in client.segments_to_send(120.0)] == [RST]
    assert client.pop_events() == [ConnEvent.TIMED_OUT, ConnEvent.CLOSED]


def test_lost_syn_ack_is_repaired_by_the_retransmitted_syn() -> None:
    client = dialer(0.0, iss=100)
    syn = client.segments_to_send(0.0)[0]
    server = StreamConnection(CONFIG, iss=500)
    server.open_passive(syn.seq, syn.window_units, 0.01)
    lost_synack = server.segments_to_send(0.01)
    assert [s.flags for s in lost_synack] == [SYN | ACK]
    client.on_timer(1.0)
    again = client.segments_to_send(1.0)
    assert again == [OutSegment(SYN, 100, 0, 64)]
    deliver(again, server, 1.01)  # a duplicate SYN: the server answers with the same SYN-ACK
    resent = server.segments_to_send(1.01)
    assert resent == lost_synack
    deliver(resent, client, 1.02)
    assert client.pop_events() == [ConnEvent.ESTABLISHED]
    deliver(client.segments_to_send(1.02), server, 1.03)
    assert server.pop_events() == [ConnEvent.ESTABLISHED]


def test_lost_last_segment_is_recovered_by_a_tail_loss_probe_before_the_rto() -> None:
    client, server = established_pair(0.0)
    client.write(b"a" * 1000, 0.0)
    deliver(client.segments_to_send(0.0), server, 0.025)
    server.on_timer(0.065)  # delayed ACK
    deliver(server.segments_to_send(0.065), client, 0.09)
    client.write(b"b" * 3000, 1.0)
    burst = client.segments_to_send(1.0)
    assert [len(s.payload) for s in burst] == [1000, 1000, 1000]
    deliver(burst[:2], server, 1.025)  # the last segment of the write is lost
    deliver(server.segments_to_send(1.025), client, 1.05)
    assert client.segments_to_send(1.05) == []  # what the driver does after every input
    probe_at = client.timers.probe_at
    assert probe_at is not None and probe_at < client.timers.retransmit_at  # type: ignore[operator]
    assert client.rtt.srtt is not None
    assert probe_at == pytest.approx(1.05 + 2 * client.rtt.srtt + CONFIG.delayed_ack_timeout)
    client.on_timer(probe_at)
    probe = client.segments_to_send(probe_at)
    assert [(s.seq, len(s.payload)) for s in probe] == [(burst[2].seq, 1000)]  # original boundaries
    assert client.stats.tail_loss_probes == 1 and client.stats.timeouts == 0
    deliver(probe, server, probe_at + 0.025)
    assert server.take_received() == b"a" * 1000 + b"b" * 3000


def test_lost_fin_is_retransmitted_until_acknowledged() -> None:
    client, server = established_pair(0.0)
    client.shutdown_write(0.0)
    fin = client.segments_to_send(0.0)
    assert fin == [OutSegment(FIN | ACK, 101, 501, 64)]
    now = client.next_deadline()
    assert now is not None
    client.on_timer(now)
    again = client.segments_to_send(now)
    assert again == fin  # the FIN again (Go never retransmits its FIN)
    deliver(again, server, now + 0.01)
    assert server.pop_events() == [ConnEvent.PEER_EOF]
    server.on_timer(now + 0.01 + CONFIG.short_segment_ack_delay)
    deliver(server.segments_to_send(now + 0.012), client, now + 0.02)
    assert client.state is State.FIN_WAIT_2


def test_orphan_in_fin_wait_2_resets_after_the_timeout_but_a_half_close_waits() -> None:
    """The app closed completely; the peer ACKs our FIN and keeps answering keepalives but never
    sends its own FIN: after ``orphan_fin_wait_2_timeout`` an RST ends it (Linux tcp_fin_timeout).
    A half-closed connection (the app still reads) waits for the peer as long as it lives."""
    config = TransportConfig()
    for orphaned in (True, False):
        client, server = established_pair()
        if orphaned:
            client.orphan(1.0)
        else:
            client.shutdown_write(1.0)
        fin = client.segments_to_send(1.0)
        assert [s.flags for s in fin] == [FIN | ACK]
        deliver(fin, server, 1.01)
        server.on_timer(1.01 + config.short_segment_ack_delay)  # the server's app keeps it open
        deliver(server.segments_to_send(1.012), client, 1.02)
        assert client.state is State.FIN_WAIT_2 and client.orphaned is orphaned
        expected_deadline = 1.02 + config.orphan_fin_wait_2_timeout if orphaned else None
        assert client.timers.orphan_at == expected_deadline
        now = 1.02
        while now < 1.02 + 2 * config.orphan_fin_wait_2_timeout and not client.is_closed:
            now = min(d for d in (client.next_deadline(), server.next_deadline()) if d is not None)
            for conn in (client, server):
                conn.on_timer(now)
            deliver(client.segments_to_send(now), server, now)  # keepalives both ways
            deliver(server.segments_to_send(now), client, now)
        if orphaned:
            assert client.is_closed and now == pytest.approx(expected_deadline)
            assert server.state is State.CLOSED and ConnEvent.RESET in server.pop_events()
        else:
            assert client.state is State.FIN_WAIT_2


def test_a_path_mss_sizes_the_segments_and_the_initial_window() -> None:
    client, server = established_pair()
    client.use_mss(8192)
    assert client.cc.mss == 8192
    client.write(b"z" * 20000, 0.0)
    sizes = [len(s.payload) for s in client.segments_to_send(0.0)]
    assert sizes == [8192, 8192]  # the short rest waits for Nagle, now measured against 8192


def test_the_receiver_takes_large_segments_and_acks_every_second_one() -> None:
    client, server = established_pair()
    client.use_mss(8192)
    client.write(b"y" * 8192 * 2, 0.0)
    deliver(client.segments_to_send(0.0), server, 0.001)
    assert server.readable_bytes == 2 * 8192
    assert [s.flags for s in server.segments_to_send(0.001)] == [ACK]


def test_send_buffer_is_autotuned_to_two_windows_between_a_floor_and_the_capacity() -> None:
    client, _ = established_pair()
    window = client.cc.window_bytes
    expected = min(CONFIG.send_buffer_bytes, max(CONFIG.send_buffer_min_bytes, 2 * window))
    assert client.send_space == expected
    taken = client.write(b"q" * (expected + 1000), 0.0)
    assert taken == expected and client.send_space == 0
