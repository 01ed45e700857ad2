"""TIME_WAIT remnants: expiry order, the batched deadline, the ACK a retransmitted FIN gets."""

from __future__ import annotations

from pilotsock.transport.states import OutSegment
from pilotsock.transport.time_wait import TimeWaitTable
from pilotsock.wire.header import Flag

KEY_A = (49152, 0, 7, 80)
KEY_B = (49153, 0, 7, 80)


def test_remnants_expire_oldest_first_after_their_time() -> None:
    table = TimeWaitTable(10.0, batch=0.5)
    assert table.next_deadline() is None
    table.add(KEY_A, snd_nxt=11, rcv_nxt=21, window_units=64, reuse=False, now=1.0)
    table.add(KEY_B, snd_nxt=12, rcv_nxt=22, window_units=64, reuse=True, now=2.0)
    assert len(table) == 2 and KEY_A in table
    assert table.next_deadline() == 11.5  # the oldest one's time, plus the batch
    assert table.expire(10.9) == []
    [(key, remnant)] = table.expire(11.0)
    assert key == KEY_A and not remnant.reuse
    assert table.next_deadline() == 12.5
    [(key, remnant)] = table.expire(20.0)
    assert key == KEY_B and remnant.reuse and len(table) == 0 and table.next_deadline() is None


def test_entering_time_wait_again_moves_to_the_back_of_the_line() -> None:
    table = TimeWaitTable(10.0)
    table.add(KEY_A, snd_nxt=1, rcv_nxt=1, window_units=1, reuse=False, now=0.0)
    table.add(KEY_B, snd_nxt=1, rcv_nxt=1, window_units=1, reuse=False, now=1.0)
    table.add(KEY_A, snd_nxt=2, rcv_nxt=2, window_units=1, reuse=False, now=2.0)
    assert [key for key, _ in table.expire(11.0)] == [KEY_B]
    assert [key for key, _ in table.expire(12.0)] == [KEY_A]


def test_a_remnant_answers_with_a_pure_ack_of_what_the_connection_had() -> None:
    table = TimeWaitTable(10.0)
    remnant = table.add(KEY_A, snd_nxt=501, rcv_nxt=1001, window_units=128, reuse=False, now=0.0)
    assert remnant.ack() == OutSegment(int(Flag.ACK), 501, 1001, 128)
    assert table.remove(KEY_A) is remnant and table.remove(KEY_A) is None and KEY_A not in table
