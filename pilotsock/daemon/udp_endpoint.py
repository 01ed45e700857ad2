# SPDX-License-Identifier: Apache-2.0
"""The daemon's single UDP socket: the only ``sendto``/``recvfrom`` in the daemon.

Where it sits: ring 3. Readable -> drain with ``recvfrom_into`` into one preallocated buffer until
EAGAIN (bounded per wake-up for fairness) -> ``on_datagram(view, source, now)`` -> after the
batch, ``on_batch_end(now)`` so the stack sends one round of ACKs per batch (performance.md §2).
Socket buffers: 4 MiB requested, the effective value read back and kept in ``buffer_bytes``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Callable

from pilotsock.endpoints import format_host_port as format_endpoint
from pilotsock.endpoints import split_host_port
from pilotsock.wire.header import MAX_PAYLOAD_BYTES

log = logging.getLogger("pilotsock.daemon.udp")

RECEIVE_BUFFER_BYTES = MAX_PAYLOAD_BYTES + 128  # >= 65535 + 38 (wire.md §5)
MAX_DATAGRAMS_PER_WAKEUP = 512
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
        self.counters = {"udp.received": 0, "udp.sent": 0, "udp.send_errors": 0, "udp.handler_errors": 0}
        loop.add_reader(self.sock.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        recvfrom_into = self.sock.recvfrom_into
        view = self._view
        now = self._loop.time()
        received = 0
        while received < MAX_DATAGRAMS_PER_WAKEUP:
            try:
                length, source = recvfrom_into(self._buffer)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ICMP port unreachable reported on the socket
                if exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                    continue
                log.warning("udp receive failed: %s", exc)
                break
            received += 1
            try:
                self._on_datagram(view[:length], source[:2], now)
            except Exception:  # a bug in a handler must never take the daemon down
                self.counters["udp.handler_errors"] += 1
                log.exception("datagram handler failed")
        self.counters["udp.received"] += received
        if received:
            self._on_batch_end(now)

    def send(self, data: bytes | memoryview, address: Address) -> None:
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
