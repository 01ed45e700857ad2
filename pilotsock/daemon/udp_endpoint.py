# SPDX-License-Identifier: Apache-2.0
"""The daemon's single UDP socket: the only ``sendto``/``recvfrom`` in the daemon.

Where it sits: ring 3. Readable -> drain with ``recvmsg_into`` into one preallocated buffer until
EAGAIN (bounded per wake-up for fairness; with UDP_GRO one read may carry several datagrams of one
size, split again here) -> ``on_datagram(view, source, now)`` -> after the
batch, ``on_batch_end(now)`` so the stack sends one round of ACKs per batch (performance.md §2).
Socket buffers: 4 MiB requested, the effective value read back and kept in ``buffer_bytes``.

Sending: between ``hold()`` and ``release()`` (a stack flush), consecutive frames to the same
address whose sizes are equal (the last may be shorter) are collected into a run that leaves in one
``sendmsg`` with ``UDP_SEGMENT`` (GSO, Linux >= 4.18; performance.md §2) as soon as it is full or
broken, the kernel cutting it apart. Small frames, frames too large to pair and kernels without
GSO get one ``sendto`` each, at once.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
from typing import Callable

from pilotsock.endpoints import format_host_port as format_endpoint
from pilotsock.endpoints import split_host_port
from pilotsock.wire.header import MAX_PAYLOAD_BYTES

log = logging.getLogger("pilotsock.daemon.udp")

RECEIVE_BUFFER_BYTES = MAX_PAYLOAD_BYTES + 128  # >= 65535 + 38 (wire.md §5)
MAX_DATAGRAMS_PER_WAKEUP = 512
SOL_UDP = 17
UDP_SEGMENT = 103
UDP_GRO = 104
_GRO_ANCILLARY_BYTES = socket.CMSG_SPACE(4)
_GRO_SIZE = struct.Struct("=i")
GSO_MAX_SEGMENTS = 64  # the kernel's limit per call (UDP_MAX_SEGMENTS, 128 on newer kernels)
GSO_MAX_BYTES = 65000  # one UDP datagram's worth of payload before segmentation
# Smaller frames (ACKs, handshakes, short writes) leave at once: holding them until the end of a
# flush put the flush's bookkeeping on every round trip's critical path (bench: connection setup
# +20 %, 8-byte RTT +8 %), and runs of them are rare.
GSO_MIN_BYTES = 1024
_GSO_SIZE = struct.Struct("=H")
Address = tuple[str, int]


def parse_host_port(text: str, *, default_host: str = "127.0.0.1") -> Address:
    """``host:port`` (IPv6 as ``[::1]:port``; an empty host means ``default_host``).

    Raises:
        ValueError: the text is not a host and a port in 0-65535.
    """
    parsed = split_host_port(text)
    if parsed is None:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    host, port = parsed
    return host or default_host, port


def format_host_port(address: Address) -> str:
    return format_endpoint(address[0], address[1])


def _enable_gro(sock: socket.socket) -> bool:
    try:
        sock.setsockopt(SOL_UDP, UDP_GRO, 1)
    except OSError:
        return False
    return True


def _supports_gso(sock: socket.socket) -> bool:
    try:
        sock.getsockopt(SOL_UDP, UDP_SEGMENT)
    except OSError:
        return False
    return True


class UdpEndpoint:
    def __init__(self, loop: asyncio.AbstractEventLoop, listen: Address, *, buffer_bytes: int,
                 on_datagram: Callable[[memoryview, Address, float], None],
                 on_batch_end: Callable[[float], None]) -> None:
        family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, option, buffer_bytes)
            except OSError:
                pass
        self.sock.bind(listen)
        self.sock.setblocking(False)
        self.receive_buffer_bytes = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.send_buffer_bytes = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        self.local_address: Address = self.sock.getsockname()[:2]
        self._loop = loop
        self._on_datagram = on_datagram
        self._on_batch_end = on_batch_end
        self._buffer = bytearray(RECEIVE_BUFFER_BYTES)
        self._view = memoryview(self._buffer)
        self.counters = {"udp.received": 0, "udp.sent": 0, "udp.send_errors": 0, "udp.handler_errors": 0,
                         "udp.gso_sends": 0}
        self._held = 0
        # The run being collected: same address, same size (the last may be shorter).
        self._run: list[bytes | memoryview] = []
        self._run_address: Address = ("", 0)
        self._run_size = self._run_bytes = 0
        self._run_ended = False
        self.gso = _supports_gso(self.sock)
        self.gro = _enable_gro(self.sock)
        loop.add_reader(self.sock.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        recvmsg_into = self.sock.recvmsg_into
        buffers = [self._buffer]
        ancillary_bytes = _GRO_ANCILLARY_BYTES if self.gro else 0
        view = self._view
        now = self._loop.time()
        received = 0
        while received < MAX_DATAGRAMS_PER_WAKEUP:
            try:
                length, ancillary, _, source = recvmsg_into(buffers, ancillary_bytes)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ICMP port unreachable reported on the socket
                if exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                    continue
                log.warning("udp receive failed: %s", exc)
                break
            segment = length
            for level, kind, data in ancillary:  # GRO: several datagrams of one size, coalesced
                if level == SOL_UDP and kind == UDP_GRO and len(data) >= _GRO_SIZE.size:
                    segment = _GRO_SIZE.unpack_from(data)[0] or length
            source = source[:2]
            for offset in range(0, length, segment) if length else (0,):
                received += 1
                try:
                    self._on_datagram(view[offset:min(offset + segment, length)], source, now)
                except Exception:  # a bug in a handler must never take the daemon down
                    self.counters["udp.handler_errors"] += 1
                    log.exception("datagram handler failed")
        self.counters["udp.received"] += received
        if received:
            self._on_batch_end(now)

    def send(self, data: bytes | memoryview, address: Address) -> None:
        size = len(data)
        if not (self._held and self.gso) or size > GSO_MAX_BYTES // 2 or size < GSO_MIN_BYTES:
            self._send_run()  # keep the order
            self._send_one(data, address)
            return
        run = self._run
        if run and (address != self._run_address or size > self._run_size or self._run_ended):
            self._send_run()
        if not run:
            self._run_address, self._run_size, self._run_bytes, self._run_ended = address, size, 0, False
        run.append(data)
        self._run_bytes += size
        self._run_ended = size < self._run_size  # only the last segment of a run may be shorter
        if len(run) >= GSO_MAX_SEGMENTS or self._run_bytes + self._run_size > GSO_MAX_BYTES:
            self._send_run()  # full: let the peer start on it while we prepare the next run

    def hold(self) -> None:
        """Collect runs of frames for segmentation offload until the matching ``release()``."""
        self._held += 1

    def release(self) -> None:
        self._held -= 1
        if self._held == 0:
            self._send_run()

    def _send_run(self) -> None:
        run = self._run
        if not run:
            return
        if len(run) == 1:
            self._send_one(run[0], self._run_address)
        else:
            self._send_segmented(run, self._run_size, self._run_address)
        run.clear()

    def _send_segmented(self, frames: list[bytes | memoryview], size: int, address: Address) -> None:
        try:
            self.sock.sendmsg(frames, [(SOL_UDP, UDP_SEGMENT, _GSO_SIZE.pack(size))], 0, address)
            self.counters["udp.sent"] += len(frames)
            self.counters["udp.gso_sends"] += 1
        except (BlockingIOError, InterruptedError):
            self.counters["udp.send_errors"] += len(frames)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EIO, errno.ENOPROTOOPT, errno.EOPNOTSUPP):
                log.info("udp: segmentation offload refused (%s); sending datagrams one by one", exc)
                self.gso = False
                for frame in frames:
                    self._send_one(frame, address)
                return
            self.counters["udp.send_errors"] += len(frames)
            log.debug("udp send to %s failed: %s", address, exc)

    def _send_one(self, data: bytes | memoryview, address: Address) -> None:
        try:
            self.sock.sendto(data, address)
            self.counters["udp.sent"] += 1
        except (BlockingIOError, InterruptedError):
            self.counters["udp.send_errors"] += 1  # buffer full: like a lost packet
        except OSError as exc:
            self.counters["udp.send_errors"] += 1
            log.debug("udp send to %s failed: %s", address, exc)

    def close(self) -> None:
        try:
            self._loop.remove_reader(self.sock.fileno())
        except (ValueError, OSError):
            pass
        self.sock.close()
