"""The node stack keeps a stream in TIME_WAIT as a small remnant, not as its whole machine.

A real :class:`NodeStack` with connections inside one node (its loopback queue: no tunnel, no
sockets), driven by ``flush(now)`` and ``on_timer`` with a fake clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterator

import pytest

from pilotsock.addresses import Addr
from pilotsock.config import DaemonConfig
from pilotsock.daemon.stack import NodeStack, StreamEndpoint
from pilotsock.errors import ErrorCode
from pilotsock.transport.states import State
from pilotsock.tunnel.peers import PeerTable
from pilotsock.wire.header import Flag, Packet, Protocol

OWN = Addr(0, 5)
PORT = 80
STREAM = int(Protocol.STREAM)
ACK, FIN, RST, SYN = int(Flag.ACK), int(Flag.FIN), int(Flag.RST), int(Flag.SYN)


class Harness:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.config = DaemonConfig()
        self.deadlines: dict[Hashable, float | None] = {}
        peers = PeerTable(self.config.tunnel, own_node=OWN.node, identity_public_key=b"k" * 32,
                          sign=lambda data: b"s" * 64)
        self.stack = NodeStack(loop, self.config, own=OWN, peers=peers, send_frame=lambda frame, path: None,
                               schedule=self.deadlines.__setitem__)
        self.accepted: list[StreamEndpoint] = []
        self.stack.listen(PORT, 16, lambda endpoint: self.accepted.append(endpoint) is None)

    def connect(self, now: float, local_port: int = 0) -> tuple[StreamEndpoint, StreamEndpoint]:
        results: list[ErrorCode] = []
        client = self.stack.dial(OWN, PORT, local_port, now, on_result=lambda _, code: results.append(code))
        self.stack.flush(now)
        assert results == [ErrorCode.OK]
        return client, self.accepted[-1]

    def close(self, endpoint: StreamEndpoint, now: float) -> None:
        endpoint.conn.shutdown_write(now)
        self.stack.mark_dirty(endpoint)
        self.stack.flush(now)

    def inject(self, flags: int, from_: StreamEndpoint, seq: int, ack: int, now: float) -> None:
        """A segment as ``from_``'s peer would send it to ``from_``'s local port."""
        self.stack.on_packet(Packet(flags, STREAM, OWN.network, OWN.node, OWN.network, OWN.node,
                                    from_.remote_port, from_.local_port, seq, ack, 64, b""), None, now)


@pytest.fixture
def harness() -> Iterator[Harness]:
    loop = asyncio.new_event_loop()
    try:
        yield Harness(loop)
    finally:
        loop.close()


def test_the_side_that_closes_first_leaves_a_remnant_that_keeps_its_port_until_time_wait_ends(
        harness: Harness) -> None:
    stack = harness.stack
    client, server = harness.connect(0.0)
    harness.close(client, 0.01)
    harness.close(server, 0.02)
    assert stack.streams == {}  # the server's side closed; the client's machine is gone
    assert client.key in stack.time_wait and client.conn.state is State.TIME_WAIT
    assert stack.active_connections == 0
    assert not stack.ports.is_free(STREAM, client.local_port)
    assert stack.counters["stream.segments_sent"] > 0  # its statistics were counted on the way out
    deadline = harness.deadlines[stack.time_wait]
    assert deadline is not None and 10.02 <= deadline <= 10.2
    stack.on_timer(stack.time_wait, 5.0)  # early: nothing ends
    assert client.key in stack.time_wait
    stack.on_timer(stack.time_wait, deadline)
    assert len(stack.time_wait) == 0 and harness.deadlines[stack.time_wait] is None
    assert stack.ports.is_free(STREAM, client.local_port)


def test_a_retransmitted_fin_gets_the_same_pure_ack_again(harness: Harness) -> None:
    stack = harness.stack
    client, server = harness.connect(0.0)
    harness.close(client, 0.01)
    fin_seq = server.conn.snd_nxt  # the server's FIN takes this sequence number
    harness.close(server, 0.02)
    assert client.key in stack.time_wait
    harness.inject(FIN | ACK, client, fin_seq, client.conn.snd_nxt, 1.0)
    assert stack.counters["stream.time_wait_acks"] == 1
    [reply] = stack._loopback
    assert (reply.flags, reply.seq, reply.ack) == (ACK, client.conn.snd_nxt, (fin_seq + 1) & 0xFFFFFFFF)
    assert (reply.src_port, reply.dst_port) == (client.local_port, PORT)
    harness.inject(ACK, client, fin_seq + 1, client.conn.snd_nxt, 1.0)  # anything else: ignored
    assert len(stack._loopback) == 1 and client.key in stack.time_wait


def test_a_reset_ends_time_wait_at_once(harness: Harness) -> None:
    stack = harness.stack
    client, server = harness.connect(0.0)
    harness.close(client, 0.01)
    harness.close(server, 0.02)
    harness.inject(RST, client, 0, 0, 1.0)
    assert client.key not in stack.time_wait and stack.ports.is_free(STREAM, client.local_port)


def test_a_new_syn_for_the_same_four_tuple_opens_a_new_connection(harness: Harness) -> None:
    """The server closed first, so its side waits; the client dials again from the same port."""
    stack = harness.stack
    client, server = harness.connect(0.0)
    harness.close(server, 0.01)
    harness.close(client, 0.02)
    assert list(stack.time_wait._remnants) == [server.key] and stack.streams == {}
    with pytest.raises(FileExistsError):  # our own side cannot dial out of a 4-tuple in TIME_WAIT
        stack.dial(OWN, server.remote_port, PORT, 1.0, on_result=lambda _, code: None)
    again, accepted = harness.connect(1.0, local_port=client.local_port)
    assert accepted.key == server.key and accepted is not server
    assert server.key not in stack.time_wait and stack.streams[server.key] is accepted
    assert again.conn.state is State.ESTABLISHED and accepted.conn.state is State.ESTABLISHED
