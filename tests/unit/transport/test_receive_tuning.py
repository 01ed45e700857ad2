"""Receive buffer autotuning: the advertised window starts small and grows with the reader."""

from __future__ import annotations

import dataclasses

from pilotsock.config import KIB, MIB, WINDOW_UNIT_BYTES, TransportConfig
from pilotsock.transport.connection import ACK, SYN, StreamConnection
from pilotsock.transport.receive_queue import ReceiveBufferTuner, ReceiveQueue

CONFIG = TransportConfig()


def test_a_fast_reader_doubles_the_buffer_each_round_trip_up_to_the_maximum() -> None:
    queue = ReceiveQueue(512 * KIB)
    tuner = ReceiveBufferTuner(queue, 4 * MIB)
    now, rtt = 0.0, 0.001
    sizes = []
    for _ in range(6):  # the reader takes a whole buffer per round trip
        tuner.on_consumed(queue.capacity_bytes // 2, now, rtt)
        tuner.on_consumed(queue.capacity_bytes // 2, now + rtt / 2, rtt)
        now += rtt
        tuner.on_consumed(0, now, rtt)
        sizes.append(queue.capacity_bytes)
    assert sizes[:3] == [1 * MIB, 2 * MIB, 4 * MIB] and sizes[-1] == 4 * MIB


def test_a_slow_reader_keeps_the_initial_buffer() -> None:
    queue = ReceiveQueue(512 * KIB)
    tuner = ReceiveBufferTuner(queue, 16 * MIB)
    for step in range(100):
        tuner.on_consumed(16 * KIB, step * 0.001, 0.001)
    assert queue.capacity_bytes == 512 * KIB


def test_a_connection_advertises_the_initial_buffer_then_what_its_reader_earns() -> None:
    config = dataclasses.replace(CONFIG, receive_buffer_initial_bytes=256 * KIB, receive_buffer_bytes=8 * MIB)
    conn = StreamConnection(config, iss=500)
    conn.open_passive(99, 64, 0.0)
    [synack] = conn.segments_to_send(0.0)
    assert synack.window_units == 256 * KIB // WINDOW_UNIT_BYTES
    conn.on_segment(ACK, 100, 501, 64, b"", 0.001)
    seq, now = 100, 0.001
    assert conn.rtt.srtt is not None  # the handshake's round trip paces the tuning
    for _ in range(40):  # the reader takes 192 KiB per round trip as it arrives
        for _ in range(3):
            conn.on_segment(ACK, seq, 501, 64, b"x" * (64 * KIB), now)
            seq += 64 * KIB
            conn.consume_received(64 * KIB, now)
        now += conn.rtt.srtt
    capacity = conn.receive_queue.capacity_bytes
    assert 2 * 192 * KIB <= capacity <= 3 * 192 * KIB  # about twice a round trip's reading: no more
    [ack] = conn.segments_to_send(now)
    assert ack.window_units == capacity // WINDOW_UNIT_BYTES


def test_taking_received_bytes_with_a_clock_tunes_like_consuming_them() -> None:
    """The daemon's echo service takes bytes instead of peeking: its window grows the same way;
    without ``now`` (the drain after close) nothing is tuned."""
    config = dataclasses.replace(CONFIG, receive_buffer_initial_bytes=256 * KIB, receive_buffer_bytes=8 * MIB)
    capacities = []
    for clock in (True, False):
        conn = StreamConnection(config, iss=500)
        conn.open_passive(99, 64, 0.0)
        conn.segments_to_send(0.0)
        conn.on_segment(ACK, 100, 501, 64, b"", 0.001)
        seq, now = 100, 0.001
        assert conn.rtt.srtt is not None
        for _ in range(40):
            for _ in range(3):
                conn.on_segment(ACK, seq, 501, 64, b"x" * (64 * KIB), now)
                seq += 64 * KIB
                assert len(conn.take_received(None, now if clock else None)) == 64 * KIB
            now += conn.rtt.srtt
        capacities.append(conn.receive_queue.capacity_bytes)
    assert capacities[0] >= 2 * 192 * KIB and capacities[1] == 256 * KIB


def test_a_flight_the_peers_window_limits_is_marked_app_limited() -> None:
    """Rate samples taken while the receiver's (growing) window holds the sender back must not
    look like a full pipe, or BBR would leave startup at the window's pace."""
    conn = StreamConnection(dataclasses.replace(CONFIG, initial_cwnd_segments=100), iss=100)
    conn.open_active(0.0)
    conn.segments_to_send(0.0)
    conn.on_segment(SYN | ACK, 500, 101, 16, b"", 0.01)  # 16 units: a 64 KiB window
    conn.segments_to_send(0.01)
    conn.write(b"x" * (256 * KIB), 0.01)
    sent = conn.segments_to_send(0.01)
    assert sum(len(s.payload) for s in sent) <= 64 * KIB + conn.mss < conn.cc.window_bytes
    assert conn.send_queue.app_limited_until >= conn.send_queue.delivered + conn.send_queue.pipe_bytes > 1
