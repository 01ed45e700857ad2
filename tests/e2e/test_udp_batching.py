"""The daemon's UDP endpoint on real loopback sockets: runs of equal-size frames leave as one GSO
send and arrive intact, in order (split again after GRO); everything else leaves one by one."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from pilotsock.daemon.udp_endpoint import GSO_MAX_SEGMENTS, UdpEndpoint

pytestmark = pytest.mark.timeout(30)


def _receive_all(endpoint_loop: asyncio.AbstractEventLoop, received: list[bytes], count: int) -> None:
    deadline = time.monotonic() + 5
    while len(received) < count and time.monotonic() < deadline:
        endpoint_loop.run_until_complete(asyncio.sleep(0.01))


def test_runs_are_segmented_and_arrive_in_order() -> None:
    loop = asyncio.new_event_loop()
    received: list[bytes] = []
    batches: list[int] = []
    try:
        receiver = UdpEndpoint(loop, ("127.0.0.1", 0), buffer_bytes=1 << 22,
                               on_datagram=lambda view, source, now: received.append(bytes(view)),
                               on_batch_end=lambda now: batches.append(len(received)))
        sender = UdpEndpoint(loop, ("127.0.0.1", 0), buffer_bytes=1 << 22,
                             on_datagram=lambda view, source, now: None, on_batch_end=lambda now: None)
        target = receiver.local_address
        other = ("127.0.0.1", 9)  # a second address breaks a run (nothing listens: the send is just lost)
        frames = [bytes([i]) * 1400 for i in range(GSO_MAX_SEGMENTS + 10)]  # more than one full run
        frames.append(b"t" * 1100)  # shorter: ends the run it joins
        frames.append(b"x" * 1400)  # a new run
        frames.append(b"y" * 40000)  # too large to pair: sent at once, after the pending run
        sender.hold()
        for frame in frames:
            sender.send(frame, target)
        sender.send(b"elsewhere", other)
        sender.send(b"z" * 1400, target)
        sender.release()
        expected = [*frames, b"z" * 1400]
        _receive_all(loop, received, len(expected))
        assert received == expected
        if sender.gso:
            assert sender.counters["udp.gso_sends"] >= 2
        assert sender.counters["udp.sent"] == len(expected) + 1
        assert receiver.counters["udp.received"] == len(expected)
        # Outside hold()/release(), and small frames inside it, leave at once.
        before = sender.counters["udp.gso_sends"]
        sender.send(b"a" * 1400, target)
        sender.send(b"b" * 1400, target)
        sender.hold()
        sender.send(b"c" * 100, target)
        sender.send(b"d" * 100, target)
        assert sender.counters["udp.sent"] == len(expected) + 5
        sender.release()
        assert sender.counters["udp.gso_sends"] == before
        _receive_all(loop, received, len(expected) + 4)
        assert received[-4:] == [b"a" * 1400, b"b" * 1400, b"c" * 100, b"d" * 100]
        sender.close()
        receiver.close()
    finally:
        loop.close()


def test_a_kernel_that_refuses_segmentation_falls_back_to_single_sends() -> None:
    loop = asyncio.new_event_loop()
    received: list[bytes] = []
    try:
        receiver = UdpEndpoint(loop, ("127.0.0.1", 0), buffer_bytes=1 << 20,
                               on_datagram=lambda view, source, now: received.append(bytes(view)),
                               on_batch_end=lambda now: None)
        sender = UdpEndpoint(loop, ("127.0.0.1", 0), buffer_bytes=1 << 20,
                             on_datagram=lambda view, source, now: None, on_batch_end=lambda now: None)

        class Refusing(socket.socket):
            def sendmsg(self, *args: object, **kwargs: object) -> int:
                raise OSError(22, "Invalid argument")

        real = sender.sock
        refusing = Refusing(real.family, real.type, 0, real.detach())
        sender.sock = refusing
        sender.gso = True
        sender.hold()
        for index in range(5):
            sender.send(bytes([index]) * 1400, receiver.local_address)
        sender.release()
        assert sender.gso is False  # learned once
        _receive_all(loop, received, 5)
        assert received == [bytes([index]) * 1400 for index in range(5)]
        sender.close()
        receiver.close()
    finally:
        loop.close()
