# SPDX-License-Identifier: Apache-2.0
"""The local API: a 0600 AF_UNIX control socket in the daemon home (``socket-design.md`` §1).

Where it sits: ring 3. A client socket turns its own fd into a control connection to
``daemon.sock`` and sends msgpack requests (``wire/local_api.py``):

- ``bind`` reserves a port for as long as this control connection lives (port 0 = ephemeral);
- ``listen`` makes the connection a listener channel: every established stream is pushed as an
  ``accept`` event with one end of a fresh socketpair attached (SCM_RIGHTS);
- ``connect`` dials; the reply carries the connected socketpair end (SCM_RIGHTS), or an error code;
- a datagram ``bind`` replies with a SOCK_SEQPACKET socketpair end carrying addressed messages;
- ``info``, ``resolve_hostname`` and ``stats`` answer questions.

The daemon's end of each stream socketpair is bound to an abstract name that encodes the virtual
addresses (G11), so ``getpeername()`` on the application's fd recovers them after dup/fork/fromfd.
Garbage on a control connection closes that connection only; it is counted, never fatal.
"""

from __future__ import annotations

import array
import asyncio
import logging
import os
import socket
import struct
from collections import OrderedDict
from pathlib import Path
from typing import Any, Awaitable, Callable

from pilotsock.addresses import Addr
from pilotsock.daemon.channels import AppTraffic, EchoApp, UnixDatagramChannel, UnixStreamChannel
from pilotsock.daemon.stack import DATAGRAM, STREAM, DatagramPort, Listener, NodeStack, StreamEndpoint
from pilotsock.errors import ErrorCode, MalformedFrame
from pilotsock.transport.ports import NoFreePort, PortInUse
from pilotsock.wire.local_api import (
    CONNECT_GUARD_BYTES,
    FrameDecoder,
    encode_frame,
    error_reply,
    ok_reply,
    stream_label,
)

log = logging.getLogger("pilotsock.daemon.local_api")

ECHO_PORT = 7
# Per-process traffic is kept for this many application pids (the oldest is forgotten first).
TRAFFIC_PROCESSES = 4096
_UCRED = struct.Struct("3i")  # SO_PEERCRED: pid, uid, gid


def _address(value: Any) -> Addr:
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, int) for v in value)
            and 0 <= value[0] <= 0xFFFF and 0 <= value[1] <= 0xFFFFFFFF):
        return Addr(value[0], value[1])
    raise ValueError("bad address")


def _port(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFF:
        return value
    raise ValueError("bad port")


class LocalApiServer:
    def __init__(self, loop: asyncio.AbstractEventLoop, path: Path, stack: NodeStack, *,
                 info: Callable[[], dict[str, Any]],
                 resolve_hostname: Callable[[str], Awaitable[Addr | None]],
                 stats: Callable[[], dict[str, Any]]) -> None:
        self.loop = loop
        self.path = path
        self.stack = stack
        self._info = info
        self._resolve_hostname = resolve_hostname
        self._stats = stats
        self.connections: set[ControlConnection] = set()
        self.counters = {"local_api.malformed": 0, "local_api.accepted": 0, "local_api.bad_request": 0}
        self.pid = os.getpid()
        self._traffic: OrderedDict[int, AppTraffic] = OrderedDict()
        if path.exists() or path.is_symlink():
            path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            self.sock.bind(str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        self.sock.listen(512)
        self.sock.setblocking(False)
        loop.add_reader(self.sock.fileno(), self._on_accept)

    def _on_accept(self) -> None:
        for _ in range(64):
            try:
                sock, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("local API accept failed: %s", exc)
                return
            self.counters["local_api.accepted"] += 1
            self.connections.add(ControlConnection(self, sock))

    def traffic_of(self, pid: int) -> AppTraffic:
        traffic = self._traffic.get(pid)
        if traffic is None:
            traffic = self._traffic[pid] = AppTraffic()
            while len(self._traffic) > TRAFFIC_PROCESSES:
                self._traffic.popitem(last=False)
        else:
            self._traffic.move_to_end(pid)
        return traffic

    def traffic(self) -> list[list[int]]:
        """``[pid, streams, bytes sent, bytes received]`` per application process."""
        return [[pid, t.streams, t.sent, t.received] for pid, t in self._traffic.items()]

    def start_echo(self) -> None:
        def accept_echo(endpoint: StreamEndpoint) -> bool:
            endpoint.app = EchoApp(self.stack, endpoint)
            return True

        self.stack.ports.bind(STREAM, ECHO_PORT, self)
        self.stack.listen(ECHO_PORT, self.stack.config.admission.max_backlog, accept_echo)

    def close(self) -> None:
        try:
            self.loop.remove_reader(self.sock.fileno())
        except (ValueError, OSError):
            pass
        self.sock.close()
        for connection in list(self.connections):
            connection.close()
        try:
            self.path.unlink()
        except OSError:
            pass


class ControlConnection:
    """One client control connection and whatever it owns (a binding, listener or dial)."""

    def __init__(self, server: LocalApiServer, sock: socket.socket) -> None:
        self.server = server
        self.stack = server.stack
        self.loop = server.loop
        self.sock = sock
        self._fd = sock.fileno()
        self._decoder = FrameDecoder()
        self._closed = False
        self.bound: tuple[int, int] | None = None  # (protocol, port)
        self.listener: Listener | None = None
        self.dial: StreamEndpoint | None = None
        self.datagram: UnixDatagramChannel | None = None
        self.reuse = False  # the client's SO_REUSEADDR, sent with bind and connect
        try:
            pid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))[0]
        except OSError:
            pid = 0
        self.traffic = server.traffic_of(pid)
        sock.setblocking(False)
        self.loop.add_reader(self._fd, self._on_readable)

    # -- I/O --------------------------------------------------------------------------------

    def _on_readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if not data:
            self.close()
            return
        try:
            requests = self._decoder.feed(data)
        except MalformedFrame:
            self.server.counters["local_api.malformed"] += 1
            self.send(error_reply(ErrorCode.BAD_REQUEST, "malformed frame"))
            self.close()
            return
        for request in requests:
            if self._closed:
                return
            try:
                self._dispatch(request)
            except (ValueError, TypeError, KeyError) as exc:
                self.server.counters["local_api.bad_request"] += 1
                self.send(error_reply(ErrorCode.BAD_REQUEST, str(exc)))
            except Exception:
                log.exception("local API request failed: %r", request.get("op"))
                self.send(error_reply(ErrorCode.INTERNAL, "internal error"))

    def send(self, message: dict[str, Any], fd: int | None = None) -> bool:
        """Send one frame (with an fd attached); False if the client cannot take it now."""
        if self._closed:
            return False
        frame = encode_frame(message)
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))] if fd is not None else []
        try:
            sent = self.sock.sendmsg([frame], ancillary)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            self.close()
            return False
        if sent != len(frame):  # a partial control frame would desynchronise the client
            self.close()
            return False
        return True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.loop.remove_reader(self._fd)
        except (ValueError, OSError):
            pass
        self.sock.close()
        self.server.connections.discard(self)
        now = self.loop.time()
        if self.listener is not None:
            self.stack.close_listener(self.listener, now)
            self.listener = None
        if self.dial is not None:
            endpoint, self.dial = self.dial, None
            endpoint.on_dial_result = None
            endpoint.conn.abort(now)
            self.stack.mark_dirty(endpoint)
            self.stack.request_flush()
        if self.bound is not None:
            protocol, port = self.bound
            if self.datagram is None:
                self.stack.ports.release(protocol, port, self)
            self.bound = None

    # -- requests ---------------------------------------------------------------------------

    def _dispatch(self, request: dict[str, Any]) -> None:
        op = request.get("op")
        handler = {
            "info": self._op_info, "bind": self._op_bind, "listen": self._op_listen,
            "connect": self._op_connect, "resolve_hostname": self._op_resolve_hostname,
            "stats": self._op_stats, "stream_option": self._op_stream_option,
        }.get(op)  # type: ignore[arg-type]
        if handler is None:
            self.server.counters["local_api.bad_request"] += 1
            self.send(error_reply(ErrorCode.BAD_REQUEST, f"unknown op {op!r}"))
            return
        handler(request)

    def _op_info(self, request: dict[str, Any]) -> None:
        self.send(ok_reply(**self.server._info()))

    def _op_stats(self, request: dict[str, Any]) -> None:
        self.send(ok_reply(**self.server._stats(), traffic=self.server.traffic()))

    def _op_stream_option(self, request: dict[str, Any]) -> None:
        """Change a live stream by its id: TCP_NODELAY set after connect/accept, or an abort
        (the application closes with SO_LINGER (1, 0))."""
        conn_id = request.get("conn")
        if not isinstance(conn_id, int) or isinstance(conn_id, bool):
            raise ValueError("conn must be an integer")
        endpoint = self.stack.stream_by_id(conn_id)
        if endpoint is None:
            self.send(error_reply(ErrorCode.NOT_CONNECTED))
            return
        if "nodelay" in request:
            endpoint.conn.nodelay = bool(request["nodelay"])
        if request.get("abort"):  # SO_LINGER (1, 0) on close: RST instead of FIN
            now = self.loop.time()
            if isinstance(endpoint.app, UnixStreamChannel):
                # What the application wrote before closing is on the wire before the RST, as
                # on loopback TCP where send() had already delivered it.
                endpoint.app.pull()
                self.stack.mark_dirty(endpoint)
                self.stack.flush(now)
            endpoint.conn.abort(now)
        self.stack.mark_dirty(endpoint)  # Nagle may have held a small segment back
        self.stack.request_flush()
        self.send(ok_reply())

    def _op_resolve_hostname(self, request: dict[str, Any]) -> None:
        name = request.get("hostname")
        if not isinstance(name, str) or not name:
            raise ValueError("hostname must be a non-empty string")

        async def resolve() -> None:
            try:
                address = await self.server._resolve_hostname(name)
            except Exception:
                address = None
            if address is None:
                self.send(error_reply(ErrorCode.NO_SUCH_NODE, name))
            else:
                self.send(ok_reply(address=[address.network, address.node]))

        self.loop.create_task(resolve())

    def _op_bind(self, request: dict[str, Any]) -> None:
        kind = request.get("type", "stream")
        port = _port(request.get("port", 0))
        reuse = bool(request.get("reuse", False))
        if self.bound is not None or self.listener is not None:
            self.send(error_reply(ErrorCode.INVALID_ARGUMENT, "already bound"))
            return
        protocol = DATAGRAM if kind == "dgram" else STREAM
        if kind not in ("stream", "dgram"):
            raise ValueError(f"unknown socket type {kind!r}")
        try:
            port = self.stack.ports.bind(protocol, port, self, reuse=reuse)
        except PortInUse:
            self.send(error_reply(ErrorCode.ADDRESS_IN_USE))
            return
        except NoFreePort:
            self.send(error_reply(ErrorCode.ADDRESS_NOT_AVAILABLE))
            return
        self.bound = (protocol, port)
        self.reuse = reuse
        if protocol == STREAM:
            self.send(ok_reply(port=port, address=list(self.stack.own)))
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            def released() -> None:
                self.stack.unbind_datagram(datagram_port)
                self.stack.ports.release(protocol, port, self)

            channel = UnixDatagramChannel(self.stack, port, ours, released)
            datagram_port = DatagramPort(port, channel.deliver)
            self.stack.bind_datagram(datagram_port)
            self.datagram = channel
            self.send(ok_reply(port=port, address=list(self.stack.own), fd=1), theirs.fileno())
        finally:
            theirs.close()

    def _op_listen(self, request: dict[str, Any]) -> None:
        backlog = request.get("backlog", self.stack.config.admission.default_backlog)
        if not isinstance(backlog, int) or isinstance(backlog, bool):
            raise ValueError("backlog must be an integer")
        admission = self.stack.config.admission
        backlog = min(max(backlog, 1), admission.max_backlog)
        if self.listener is not None:
            self.listener.backlog = backlog  # listen() twice adjusts the backlog, like the kernel
            self.send(ok_reply(port=self.listener.port))
            return
        if self.bound is None:
            try:
                port = self.stack.ports.bind(STREAM, 0, self)
            except NoFreePort:
                self.send(error_reply(ErrorCode.ADDRESS_NOT_AVAILABLE))
                return
            self.bound = (STREAM, port)
        protocol, port = self.bound
        if protocol != STREAM:
            self.send(error_reply(ErrorCode.NOT_SUPPORTED))
            return
        self.listener = self.stack.listen(port, backlog, self._push_accept)
        self.listener.reuse = self.reuse
        self.send(ok_reply(port=port))

    def _push_accept(self, endpoint: StreamEndpoint) -> bool:
        return self._hand_over(endpoint, {
            "ev": "accept", "fd": 1, "peer": list(endpoint.remote), "peer_port": endpoint.remote_port,
            "local_port": endpoint.local_port, "conn": endpoint.id,
        })

    def _hand_over(self, endpoint: StreamEndpoint, message: dict[str, Any]) -> bool:
        """Send ``message`` with the client's end of a new socketpair for ``endpoint``, then
        serve our end (after the send: the client's wake-up is on the critical path, our
        bookkeeping is not; bytes it writes meanwhile wait in the pair)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._label(ours, endpoint)
        try:
            delivered = self.send(message, theirs.fileno())
        finally:
            theirs.close()
        endpoint.app = UnixStreamChannel(self.stack, endpoint, ours, traffic=self.traffic)
        endpoint.app.update_interest()
        return delivered

    def _connected_reply(self, endpoint: StreamEndpoint, **extra: Any) -> dict[str, Any]:
        """The reply that hands a client its end of a connected (or connecting) stream."""
        return ok_reply(fd=1, local_port=endpoint.local_port, peer=list(endpoint.remote),
                        peer_port=endpoint.remote_port, address=list(self.stack.own), conn=endpoint.id, **extra)

    def _label(self, ours: socket.socket, endpoint: StreamEndpoint) -> None:
        try:
            ours.bind(stream_label(endpoint.remote, endpoint.remote_port, self.stack.own, endpoint.local_port,
                                   f"{self.server.pid}.{endpoint.id}"))
        except OSError:
            pass  # a label clash only loses the G11 recovery, never the connection

    def _connect_in_background(self, remote: Addr, port: int, local_port: int, nodelay: bool,
                               reuse: bool, now: float) -> StreamEndpoint:
        """Non-blocking connect (G6): hand the client its end of the pair at once; the dial's
        outcome arrives on the pair itself (the guard consumed, or an error frame and a close),
        so this control connection may go away meanwhile."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        stack = self.stack
        traffic = self.traffic

        def on_result(endpoint: StreamEndpoint, code: ErrorCode) -> None:
            if code is ErrorCode.OK:
                endpoint.app = UnixStreamChannel(stack, endpoint, ours, discard_bytes=CONNECT_GUARD_BYTES,
                                                 traffic=traffic)
                endpoint.app.update_interest()
                return
            try:
                ours.setblocking(False)
                ours.send(encode_frame(error_reply(code)))
            except OSError:
                pass  # the client is gone already
            ours.close()

        try:
            endpoint = stack.dial(remote, port, local_port, now, nodelay=nodelay, reuse=reuse,
                                  on_result=on_result)
        except BaseException:
            ours.close()
            theirs.close()
            raise
        self._label(ours, endpoint)
        try:
            self.send(self._connected_reply(endpoint, pending=True), theirs.fileno())
        finally:
            theirs.close()
        return endpoint

    def _op_connect(self, request: dict[str, Any]) -> None:
        if self.dial is not None or self.listener is not None:
            self.send(error_reply(ErrorCode.ALREADY_CONNECTED if self.dial else ErrorCode.INVALID_ARGUMENT))
            return
        remote = _address(request.get("address"))
        port = _port(request.get("port"))
        if remote.node == 0 or remote.is_broadcast:
            self.send(error_reply(ErrorCode.UNREACHABLE, "not a unicast address"))
            return
        if remote.network != self.stack.own.network and remote.network != 0:
            self.send(error_reply(ErrorCode.UNREACHABLE, "custom networks are not supported"))
            return
        if remote.network == 0 and self.stack.own.network != 0:
            remote = Addr(self.stack.own.network, remote.node)
        local_port = 0
        if self.bound is not None:
            protocol, local_port = self.bound
            if protocol != STREAM:
                self.send(error_reply(ErrorCode.NOT_SUPPORTED))
                return
        now = self.loop.time()
        nodelay = bool(request.get("nodelay"))
        background = bool(request.get("nonblocking"))
        reuse = self.reuse if self.bound is not None else bool(request.get("reuse"))
        try:
            if background:
                endpoint = self._connect_in_background(remote, port, local_port, nodelay, reuse, now)
            else:
                endpoint = self.stack.dial(remote, port, local_port, now, nodelay=nodelay, reuse=reuse,
                                           on_result=self._on_dial_result)
        except NoFreePort:
            self.send(error_reply(ErrorCode.ADDRESS_NOT_AVAILABLE))
            return
        except FileExistsError:
            self.send(error_reply(ErrorCode.ADDRESS_IN_USE))
            return
        if self.bound is not None:
            # The connection now owns the port; the reservation ends with this request.
            self.stack.ports.release(STREAM, local_port, self)
            self.bound = None
        if not background:
            self.dial = endpoint

    def _on_dial_result(self, endpoint: StreamEndpoint, code: ErrorCode) -> None:
        self.dial = None
        if code is not ErrorCode.OK:
            self.send(error_reply(code))
            return
        if not self._hand_over(endpoint, self._connected_reply(endpoint)):
            endpoint.conn.abort(self.loop.time())
            self.stack.mark_dirty(endpoint)
            self.stack.request_flush()
