# SPDX-License-Identifier: Apache-2.0
"""Application sides of streams and datagram ports.

Where it sits: ring 3. A :class:`UnixStreamChannel` joins a stream machine to the daemon's end of
an AF_UNIX socketpair whose other end the application owns (``socket-design.md`` §1):

- app -> network: read only while the machine has send space (back-pressure reaches the app's
  ``send`` through the kernel buffer); EOF from the app = ``shutdown_write`` (FIN after data);
  EOF with POLLHUP = the app closed completely: an orphan, whose FIN_WAIT_2 is bounded.
- network -> app: gather-write in-order bytes; what the kernel does not take stays in the
  machine's receive queue and shrinks the advertised window; peer FIN = ``shutdown(SHUT_WR)``.
- failure (RST, give-up): close our end; if the app left unread bytes in it, the kernel reports
  ECONNRESET to the app. A full close by the app shows as EPIPE on our write -> RST (like TCP).
"""

from __future__ import annotations

import logging
import socket
from typing import Callable

from pilotsock.addresses import Addr
from pilotsock.daemon.stack import NodeStack, StreamEndpoint
from pilotsock.errors import ErrorCode
from pilotsock.unix_pair import both_directions_shut
from pilotsock.wire.local_api import DATAGRAM_ADDRESS, MAX_DATAGRAM_PAYLOAD

log = logging.getLogger("pilotsock.daemon.channels")


class AppTraffic:
    """What one application process moved through its streams (by the control connection's
    SO_PEERCRED pid): proof, for compat_tests and ``stats``, of which programs used the stack."""

    __slots__ = ("received", "sent", "streams")

    def __init__(self) -> None:
        self.streams = 0
        self.sent = 0  # app -> network
        self.received = 0  # network -> app

READ_CHUNK_BYTES = 256 * 1024
MAX_IOV = 512
UNIX_BUFFER_BYTES = 1024 * 1024


def _prepare(sock: socket.socket) -> None:
    """Non-blocking, with larger kernel buffers (best effort)."""
    sock.setblocking(False)
    for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, UNIX_BUFFER_BYTES)
        except OSError:
            pass


class UnixStreamChannel:
    def __init__(self, stack: NodeStack, endpoint: StreamEndpoint, sock: socket.socket, *,
                 traffic: AppTraffic, discard_bytes: int = 0) -> None:
        self.stack = stack
        self.traffic = traffic
        traffic.streams += 1
        self._discard = discard_bytes  # the non-blocking connect guard still to drop (G6)
        self.endpoint = endpoint
        self.sock = sock
        self.loop = stack.loop
        self._fd = sock.fileno()
        self._reading = False
        self._writing = False
        self._app_eof = False
        self._peer_eof = False
        self._eof_delivered = False
        self._closed = False
        _prepare(sock)

    # -- interest management ----------------------------------------------------------------

    def update_interest(self) -> None:
        if self._closed:
            return
        want = not self._app_eof and self.endpoint.conn.send_space > 0
        if want and not self._reading:
            self.loop.add_reader(self._fd, self._on_readable)
            self._reading = True
        elif not want and self._reading:
            self.loop.remove_reader(self._fd)
            self._reading = False

    def pull(self) -> None:
        """Take what the application has written so far (before an abort)."""
        if not self._closed and not self._app_eof:
            self._on_readable()

    def _on_readable(self) -> None:
        conn = self.endpoint.conn
        now = self.loop.time()
        recv = self.sock.recv
        while not self._app_eof:
            space = conn.send_space
            if space <= 0:
                break
            try:
                data = recv(min(space, READ_CHUNK_BYTES))
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                conn.abort(now)
                break
            if self._discard and data:
                dropped = min(self._discard, len(data))
                self._discard -= dropped
                data = data[dropped:]
                if not data:
                    continue
            if not data:
                self._app_eof = True
                if both_directions_shut(self.sock):
                    conn.orphan(now)  # the app closed its end, not just shut down for writing
                else:
                    conn.shutdown_write(now)
                break
            conn.write(data, now)
            self.traffic.sent += len(data)
            if len(data) < min(space, READ_CHUNK_BYTES):
                break
        self.stack.mark_dirty(self.endpoint)
        self.stack.request_flush()
        if self._app_eof or conn.send_space <= 0:
            self.update_interest()

    # -- delivery to the application --------------------------------------------------------

    def deliver(self, now: float) -> None:
        if self._closed:
            return
        conn = self.endpoint.conn
        while conn.readable_bytes:
            chunks = conn.receive_queue.peek()[:MAX_IOV]
            try:
                sent = self.sock.sendmsg(chunks)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                # The application closed its end completely: like TCP, data arriving after a
                # full close resets the connection.
                conn.abort(now)
                self.stack.mark_dirty(self.endpoint)
                self._close_socket()
                return
            if sent:
                conn.consume_received(sent, now)
                self.traffic.received += sent
            if sent < sum(len(chunk) for chunk in chunks):
                self._want_write()
                return
        if self._peer_eof and not self._eof_delivered:
            self._eof_delivered = True
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _want_write(self) -> None:
        if not self._writing and not self._closed:
            self.loop.add_writer(self._fd, self._on_writable)
            self._writing = True

    def _on_writable(self) -> None:
        self.loop.remove_writer(self._fd)
        self._writing = False
        now = self.loop.time()
        self.deliver(now)
        self.stack.mark_dirty(self.endpoint)
        self.stack.flush(now)

    def on_peer_eof(self, now: float) -> None:
        self._peer_eof = True
        self.deliver(now)

    def on_failed(self, code: ErrorCode, now: float) -> None:
        self._close_socket()

    def on_closed(self) -> None:
        if self.endpoint.conn.readable_bytes == 0:
            self._close_socket()
        else:
            # Data still waits for a slow reader after the machine finished: keep writing it
            # without the machine (bounded by what was already received).
            self._drain_after_close()

    def _drain_after_close(self) -> None:
        pending = self.endpoint.conn.take_received()
        peer_eof = self._peer_eof

        def write_rest() -> None:
            nonlocal pending
            try:
                sent = self.sock.send(pending)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._close_socket()
                return
            self.traffic.received += sent
            pending = pending[sent:]
            if not pending:
                if peer_eof:
                    try:
                        self.sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                self._close_socket()

        if self._reading:
            self.loop.remove_reader(self._fd)
            self._reading = False
        if self._writing:
            self.loop.remove_writer(self._fd)
        self._writing = True
        self.loop.add_writer(self._fd, write_rest)

    def _close_socket(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reading:
            self.loop.remove_reader(self._fd)
            self._reading = False
        if self._writing:
            self.loop.remove_writer(self._fd)
            self._writing = False
        self.sock.close()


class EchoApp:
    """Built-in echo (port 7): writes every received chunk back."""

    def __init__(self, stack: NodeStack, endpoint: StreamEndpoint) -> None:
        self.stack = stack
        self.endpoint = endpoint

    def deliver(self, now: float) -> None:
        conn = self.endpoint.conn
        while conn.readable_bytes and conn.send_space:
            chunk = conn.take_received(conn.send_space, now)
            conn.write(chunk, now)

    def on_peer_eof(self, now: float) -> None:
        self.deliver(now)
        self.endpoint.conn.shutdown_write(now)

    def on_failed(self, code: ErrorCode, now: float) -> None:
        return None

    def on_closed(self) -> None:
        return None

    def update_interest(self) -> None:
        if self.endpoint.conn.readable_bytes and self.endpoint.conn.send_space:
            self.stack.mark_dirty(self.endpoint)
            self.stack.request_flush()


class UnixDatagramChannel:
    """A bound datagram port whose application end is an AF_UNIX SOCK_SEQPACKET socketpair
    (message boundaries like SOCK_DGRAM, but the daemon sees the application's close).

    Each message is ``[u16 network][u32 node][u16 port] ‖ payload``: the destination when the app
    writes, the source when the daemon delivers.
    """

    def __init__(self, stack: NodeStack, port: int, sock: socket.socket,
                 on_closed: Callable[[], None]) -> None:
        self.stack = stack
        self.port = port
        self.sock = sock
        self.loop = stack.loop
        self._fd = sock.fileno()
        self._on_closed = on_closed
        self.dropped = 0
        _prepare(sock)
        self.loop.add_reader(self._fd, self._on_readable)

    def _on_readable(self) -> None:
        now = self.loop.time()
        for _ in range(256):
            try:
                message = self.sock.recv(65536 + DATAGRAM_ADDRESS.size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.close()
                return
            if not message:  # SOCK_SEQPACKET: the application closed its end
                self.close()
                return
            if len(message) < DATAGRAM_ADDRESS.size:
                self.dropped += 1
                continue
            network, node, port = DATAGRAM_ADDRESS.unpack_from(message, 0)
            payload = message[DATAGRAM_ADDRESS.size:]
            if len(payload) > MAX_DATAGRAM_PAYLOAD or not payload:
                self.dropped += 1
                continue
            self.stack.send_datagram(self.port, Addr(network, node), port, payload, now)

    def deliver(self, source: Addr, source_port: int, payload: bytes) -> None:
        try:
            self.sock.send(DATAGRAM_ADDRESS.pack(source.network, source.node, source_port) + payload)
        except (BlockingIOError, InterruptedError):
            self.dropped += 1  # the application is not reading: drop like UDP
        except OSError:
            self.close()

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            self.loop.remove_reader(self._fd)
        except (ValueError, OSError):
            pass
        self._fd = -1
        self.sock.close()
        self._on_closed()
