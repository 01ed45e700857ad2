# SPDX-License-Identifier: Apache-2.0
"""A drop-in for the stdlib ``socket`` module that adds ``AF_PILOT`` virtual sockets.

``import pilotsock.socket as socket`` gives every stdlib name (the same objects) plus ``AF_PILOT``;
``socket.socket(AF_PILOT, SOCK_STREAM)`` connects to virtual addresses like
``('0:0000.0000.0005', 80)`` (or the URL-safe ``'0-0000-0000-0005.pilot'``).

Design (``socket-design.md`` §1): a Pilot socket **is** a stdlib ``socket.socket`` whose real fd is
an AF_UNIX socket owned jointly with the local daemon. Before connect it is a plain unbound
socket; ``bind``/``listen``/``connect`` turn the same fd number (``os.dup2``) into a control
connection to the daemon, and a successful ``connect``/``accept`` turns it into one end of a
socketpair that carries pure payload bytes. ``recv``/``send``/``makefile``/timeouts/non-blocking
mode therefore run in C on a real fd, exactly as the stdlib does; only address-taking methods are
overridden. Sockets of other families are left completely to the stdlib class.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os as _os
import select as _select
import socket as _stdlib
from collections.abc import Iterator
from socket import *  # noqa: F401,F403 - re-export every stdlib name as the same object
from typing import Any

from pilotsock.addresses import ZERO, Addr, is_pilot_name, to_virtual
from pilotsock.client.locator import exchange, open_control, recv_frame
from pilotsock.errors import ErrorCode, MalformedFrame, make_error
from pilotsock.wire.local_api import CONNECT_GUARD_BYTES

__all__ = list(getattr(_stdlib, "__all__", [])) + ["AF_PILOT", "socket"]

AF_PILOT = 80  # unused by Linux AF_* values (AF_MAX is 46); socket-design.md §1
MAX_DATAGRAM_PAYLOAD = 65437
_DATAGRAM_PREFIX_BYTES = 8  # [u16 network][u32 node][u16 port]
_TYPE_MASK = ~(getattr(_stdlib, "SOCK_NONBLOCK", 0) | getattr(_stdlib, "SOCK_CLOEXEC", 0))
_LABEL_PREFIX = b"\0pilotsock|"
_CONTROL_TIMEOUT = 10.0


class _PilotState:
    """Python-side state of a virtual socket."""

    __slots__ = ("kind", "local", "local_port", "peer", "peer_port", "listening", "tcp_options", "bound",
                 "connecting", "saved_sndbuf", "unreported")

    def __init__(self, kind: int) -> None:
        self.kind = kind  # SOCK_STREAM or SOCK_DGRAM
        self.local: Addr | None = None
        self.local_port = 0
        self.peer: Addr | None = None
        self.peer_port = 0
        self.listening = False
        self.bound = False
        self.tcp_options: dict[int, int] = {}
        self.connecting = False  # a non-blocking connect is in progress (G6)
        self.saved_sndbuf = 0
        self.unreported = False  # like Linux: the first connect() after it completes returns 0


def _bad_fd() -> OSError:
    return OSError(_errno.EBADF, _os.strerror(_errno.EBADF))


def _check_port(port: object, method: str) -> int:
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError(f"'{type(port).__name__}' object cannot be interpreted as an integer")
    if not 0 <= port <= 0xFFFF:
        raise OverflowError(f"{method}(): port must be 0-65535.")
    return port


def _split_address(address: object, method: str) -> tuple[object, int]:
    if not isinstance(address, tuple) or len(address) != 2:
        raise TypeError(f"{method}(): AF_PILOT address must be tuple, not {type(address).__name__}")
    host, port = address
    return host, _check_port(port, method)


def resolve_virtual(host: object) -> Addr:
    """Map a host (canonical text, URL-safe alias or ``name.pilot``) to a virtual address.

    Raises ``socket.gaierror`` (the stdlib class) when the name cannot be resolved.
    """
    address = to_virtual(host)
    if address is not None:
        return address
    if isinstance(host, str) and is_pilot_name(host):
        name = host.lower().rstrip(".")[: -len(".pilot")]
        from pilotsock.client.locator import request

        reply = request({"op": "resolve_hostname", "hostname": name})
        if reply.get("ok"):
            network, node = reply["address"]
            return Addr(network, node)
    raise _stdlib.gaierror(_stdlib.EAI_NONAME, "Name or service not known")


def _raise_for(reply: dict[str, Any], fds: list[int]) -> None:
    if reply.get("ok"):
        return
    for fd in fds:
        _os.close(fd)
    raise make_error(int(reply.get("code", ErrorCode.INTERNAL)), reply.get("detail") or None)


class socket(_stdlib.socket):  # type: ignore[no-redef]
    """``socket.socket`` with ``AF_PILOT`` support; other families behave exactly as the stdlib."""

    __slots__ = ("_pilot",)

    def __init__(self, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None) -> None:
        if family != AF_PILOT:
            self._pilot: _PilotState | None = None
            super().__init__(family, type, proto, fileno)
            return
        kind = (type if type != -1 else _stdlib.SOCK_STREAM) & _TYPE_MASK
        if kind not in (_stdlib.SOCK_STREAM, _stdlib.SOCK_DGRAM):
            raise OSError(_errno.EPROTONOSUPPORT, _os.strerror(_errno.EPROTONOSUPPORT))
        flags = (type if type != -1 else 0) & ~_TYPE_MASK
        unix_type = (_stdlib.SOCK_STREAM if kind == _stdlib.SOCK_STREAM else _stdlib.SOCK_SEQPACKET) | flags
        self._pilot = _PilotState(kind)
        if fileno is None:
            super().__init__(_stdlib.AF_UNIX, unix_type, 0)
        else:
            super().__init__(_stdlib.AF_UNIX, unix_type, 0, fileno)
            self._recover_state()

    # -- identity ---------------------------------------------------------------------------

    @property
    def family(self) -> int:  # type: ignore[override]
        if self._pilot is not None:
            return AF_PILOT
        return super().family

    @property
    def type(self) -> int:  # type: ignore[override]
        if self._pilot is not None:
            return _stdlib.SocketKind(self._pilot.kind)
        return super().type

    def _recover_state(self) -> None:
        """Rebuild addresses from the daemon's abstract label (socket-design.md G11)."""
        state = self._pilot
        assert state is not None
        try:
            name = _stdlib.socket.getpeername(self)
        except OSError:
            return
        if isinstance(name, bytes) and name.startswith(_LABEL_PREFIX):
            from pilotsock.daemon.local_api import parse_label

            parsed = parse_label(name)
            if parsed is not None:
                state.peer, state.peer_port, state.local, state.local_port = parsed
                state.bound = True

    def __getstate__(self) -> Any:
        raise TypeError(f"cannot pickle {self.__class__.__name__!r} object")

    # -- plumbing ---------------------------------------------------------------------------

    def _become(self, new: _stdlib.socket | int) -> None:
        """Make our fd number refer to ``new`` (a socket or fd), keeping timeout/blocking mode."""
        fd = new if isinstance(new, int) else new.fileno()
        timeout = self.gettimeout()
        _os.dup2(fd, self.fileno(), inheritable=self.get_inheritable())
        if isinstance(new, int):
            _os.close(new)
        else:
            new.close()
        super().settimeout(timeout)  # O_NONBLOCK lives on the open file description: reapply

    @contextlib.contextmanager
    def _own_view(self) -> Iterator[_stdlib.socket]:
        """A plain AF_UNIX socket object on a dup of our fd, for blocking frame I/O with its own
        timeout; O_NONBLOCK is shared with the dup, so our timeout is re-applied afterwards."""
        own_timeout = self.gettimeout()
        view = _stdlib.socket(_stdlib.AF_UNIX, _stdlib.SOCK_STREAM, 0, _os.dup(self.fileno()))
        try:
            yield view
        finally:
            view.close()
            super().settimeout(own_timeout)

    def _control_on_self(self, message: dict[str, Any], timeout: float | None) -> tuple[dict[str, Any], list[int]]:
        """Exchange on our own fd (which is a control connection), preserving our timeout."""
        with self._own_view() as view:
            return exchange(view, message, timeout)

    def _check_open(self) -> _PilotState:
        if self.fileno() == -1:
            raise _bad_fd()
        assert self._pilot is not None
        return self._pilot

    # -- addresses --------------------------------------------------------------------------

    def getsockname(self) -> Any:
        state = self._pilot
        if state is None:
            return super().getsockname()
        self._check_open()
        local = state.local if state.bound else ZERO
        return (str(local if local is not None else ZERO), state.local_port)

    def getpeername(self) -> Any:
        state = self._pilot
        if state is None:
            return super().getpeername()
        self._check_open()
        if state.peer is None or (state.connecting and self._connect_outcome() is None):
            raise OSError(_errno.ENOTCONN, _os.strerror(_errno.ENOTCONN))
        return (str(state.peer), state.peer_port)

    # -- bind / listen / accept -------------------------------------------------------------

    def bind(self, address: Any) -> None:
        state = self._pilot
        if state is None:
            return super().bind(address)
        self._check_open()
        host, port = _split_address(address, "bind")
        if state.bound or state.peer is not None:
            raise OSError(_errno.EINVAL, _os.strerror(_errno.EINVAL))
        wanted = None if host in ("", None) else resolve_virtual(host)
        control = open_control(timeout=_CONTROL_TIMEOUT)
        try:
            kind = "dgram" if state.kind == _stdlib.SOCK_DGRAM else "stream"
            reuse = bool(super().getsockopt(_stdlib.SOL_SOCKET, _stdlib.SO_REUSEADDR))
            reply, fds = exchange(control, {"op": "bind", "type": kind, "port": port, "reuse": reuse},
                                   _CONTROL_TIMEOUT)
            _raise_for(reply, fds)
            own = Addr(*reply["address"])
            if wanted is not None and not wanted.is_zero and wanted != own:
                for fd in fds:
                    _os.close(fd)
                raise OSError(_errno.EADDRNOTAVAIL, _os.strerror(_errno.EADDRNOTAVAIL))
        except BaseException:
            control.close()
            raise
        if fds:  # datagram sockets get their message channel now
            control.close()
            self._become(fds[0])
        else:
            self._become(control)
        state.bound = True
        state.local = own
        state.local_port = int(reply["port"])

    def listen(self, backlog: int = -1) -> None:
        state = self._pilot
        if state is None:
            return super().listen() if backlog == -1 else super().listen(backlog)
        self._check_open()
        if state.kind != _stdlib.SOCK_STREAM or state.peer is not None:
            raise OSError(_errno.EOPNOTSUPP if state.kind != _stdlib.SOCK_STREAM else _errno.EINVAL,
                          _os.strerror(_errno.EOPNOTSUPP if state.kind != _stdlib.SOCK_STREAM else _errno.EINVAL))
        if not state.bound:
            self.bind(("", 0))
        request: dict[str, Any] = {"op": "listen"}
        if backlog >= 0:
            request["backlog"] = backlog
        reply, fds = self._control_on_self(request, _CONTROL_TIMEOUT)
        _raise_for(reply, fds)
        state.listening = True

    def accept(self) -> tuple[socket, Any]:
        state = self._pilot
        if state is None:
            return super().accept()
        self._check_open()
        if not state.listening:
            raise OSError(_errno.EINVAL, _os.strerror(_errno.EINVAL))
        while True:
            try:
                event, fds = recv_frame(self)
            except ConnectionResetError:
                raise OSError(_errno.ECONNABORTED, "pilotsock daemon closed the listener") from None
            if event.get("ev") == "accept" and fds:
                break
            for fd in fds:
                _os.close(fd)
        for extra in fds[1:]:
            _os.close(extra)
        conn = self.__class__(AF_PILOT, _stdlib.SOCK_STREAM, 0, fileno=fds[0])
        conn_state = conn._pilot
        assert conn_state is not None
        conn_state.local, conn_state.local_port = state.local, int(event["local_port"])
        conn_state.peer, conn_state.peer_port = Addr(*event["peer"]), int(event["peer_port"])
        conn_state.bound = True
        if _stdlib.getdefaulttimeout() is None and self.gettimeout():
            conn.setblocking(True)
        return conn, (str(conn_state.peer), conn_state.peer_port)

    # -- connect ----------------------------------------------------------------------------

    def connect(self, address: Any) -> None:
        state = self._pilot
        if state is None:
            return super().connect(address)
        self._check_open()
        host, port = _split_address(address, "connect")
        remote = resolve_virtual(host)
        if state.kind == _stdlib.SOCK_DGRAM:
            if not state.bound:
                self.bind(("", 0))
            state.peer, state.peer_port = remote, port
            return
        if state.connecting and self._connect_outcome() is None:
            raise OSError(_errno.EALREADY, _os.strerror(_errno.EALREADY))
        if state.unreported:
            state.unreported = False
            if state.peer is not None:
                return
        if state.peer is not None:
            raise OSError(_errno.EISCONN, _os.strerror(_errno.EISCONN))
        if state.listening:
            raise OSError(_errno.EINVAL, _os.strerror(_errno.EINVAL))
        request = {"op": "connect", "address": [remote.network, remote.node], "port": port,
                   "nodelay": bool(state.tcp_options.get(_stdlib.TCP_NODELAY, 0))}
        if not state.bound:
            self._become(open_control(timeout=_CONTROL_TIMEOUT))
        timeout = self.gettimeout()
        if timeout == 0.0:
            request["nonblocking"] = True
            timeout = _CONTROL_TIMEOUT  # only the local exchange; the handshake goes on after it
        reply, fds = self._control_on_self(request, timeout)
        _raise_for(reply, fds)
        self._become(fds[0])
        for extra in fds[1:]:
            _os.close(extra)
        state.bound = True
        state.local = Addr(*reply["address"])
        state.local_port = int(reply["local_port"])
        state.peer, state.peer_port = Addr(*reply["peer"]), int(reply["peer_port"])
        if reply.get("pending"):
            self._start_pending_connect()

    def _start_pending_connect(self) -> None:
        """G6: a minimal send buffer plus a guard the daemon consumes only when the handshake
        succeeds, so the fd turns writable exactly when the connection is established (or has
        failed); then ``SO_ERROR`` tells which, as for TCP."""
        state = self._pilot
        assert state is not None
        state.connecting = state.unreported = True
        state.saved_sndbuf = super().getsockopt(_stdlib.SOL_SOCKET, _stdlib.SO_SNDBUF)
        super().setsockopt(_stdlib.SOL_SOCKET, _stdlib.SO_SNDBUF, 1)  # the kernel's minimum
        try:
            sent = super().send(bytes(CONNECT_GUARD_BYTES))
        except OSError:
            # The daemon closed its end before the guard arrived: the dial failed at once (or
            # the connection died right after it opened). The kernel then reports no error in
            # SO_ERROR, so do not wait for it: fail now, as a kernel connect may too.
            number = self._connect_failed()
            raise OSError(number, _os.strerror(number)) from None
        if sent != CONNECT_GUARD_BYTES:
            raise OSError(_errno.ENOBUFS, _os.strerror(_errno.ENOBUFS))
        raise BlockingIOError(_errno.EINPROGRESS, _os.strerror(_errno.EINPROGRESS))

    def _connect_outcome(self) -> int | None:
        """None while a non-blocking connect is in progress, else its errno (0 = connected)."""
        state = self._pilot
        assert state is not None
        if not state.connecting:
            return 0
        poller = _select.poll()
        poller.register(self.fileno(), _select.POLLOUT)
        if not poller.poll(0):
            return None
        state.connecting = False
        if super().getsockopt(_stdlib.SOL_SOCKET, _stdlib.SO_ERROR) == 0:
            super().setsockopt(_stdlib.SOL_SOCKET, _stdlib.SO_SNDBUF, max(state.saved_sndbuf // 2, 1))
            return 0
        return self._connect_failed()

    def _connect_failed(self) -> int:
        """The errno of a failed non-blocking connect, from the daemon's error frame."""
        state = self._pilot
        assert state is not None
        state.connecting = False
        number = _errno.ECONNRESET
        with self._own_view() as view:  # the daemon's error frame, written before it closed
            view.settimeout(1.0)
            try:
                reply, fds = recv_frame(view)
                for fd in fds:
                    _os.close(fd)
                number = make_error(int(reply.get("code", ErrorCode.RESET))).errno or number
            except (OSError, MalformedFrame):
                pass
        state.peer, state.peer_port = None, 0
        state.bound = False  # a new connect() starts over on a fresh control connection
        return number

    def _settle(self) -> None:
        """Before I/O on a socket whose non-blocking connect may still run: EAGAIN while it
        does, its error if it failed (like TCP's pending error)."""
        outcome = self._connect_outcome()
        if outcome is None:
            raise BlockingIOError(_errno.EAGAIN, _os.strerror(_errno.EAGAIN))
        if outcome:
            raise OSError(outcome, _os.strerror(outcome))

    def connect_ex(self, address: Any) -> int:
        if self._pilot is None:
            return super().connect_ex(address)
        try:
            self.connect(address)
        except TimeoutError as exc:
            return exc.errno if exc.errno is not None else _errno.EAGAIN
        except OSError as exc:
            if exc.errno is None:
                raise
            return exc.errno
        return 0

    # -- options ----------------------------------------------------------------------------

    def setsockopt(self, level: int, option: int, value: Any, optlen: Any = None) -> None:
        state = self._pilot
        if state is not None and level == _stdlib.IPPROTO_TCP:
            if state.kind != _stdlib.SOCK_STREAM:
                raise OSError(_errno.ENOPROTOOPT, _os.strerror(_errno.ENOPROTOOPT))
            state.tcp_options[option] = int.from_bytes(value, "little") if isinstance(value, bytes) else int(value)
            return
        if optlen is None:
            return super().setsockopt(level, option, value)
        return super().setsockopt(level, option, value, optlen)

    def getsockopt(self, level: int, option: int, buflen: Any = None) -> Any:
        state = self._pilot
        if state is not None:
            if level == _stdlib.IPPROTO_TCP:
                if state.kind != _stdlib.SOCK_STREAM:
                    raise OSError(_errno.ENOPROTOOPT, _os.strerror(_errno.ENOPROTOOPT))
                value = state.tcp_options.get(option, 0)
                return value if buflen is None else value.to_bytes(buflen, "little")[:buflen]
            if level == _stdlib.SOL_SOCKET and option == getattr(_stdlib, "SO_DOMAIN", -1):
                return AF_PILOT if buflen is None else AF_PILOT.to_bytes(buflen, "little")
            if level == _stdlib.SOL_SOCKET and option == _stdlib.SO_TYPE:
                return state.kind if buflen is None else state.kind.to_bytes(buflen, "little")
            if level == _stdlib.SOL_SOCKET and option == _stdlib.SO_ERROR and state.connecting:
                error = self._connect_outcome() or 0
                return error if buflen is None else error.to_bytes(buflen, "little")
        if buflen is None:
            return super().getsockopt(level, option)
        return super().getsockopt(level, option, buflen)

    # -- datagrams (AF_PILOT, SOCK_DGRAM) ---------------------------------------------------

    def sendto(self, data: Any, *args: Any) -> int:
        state = self._pilot
        if state is None or state.kind != _stdlib.SOCK_DGRAM:
            if state is not None:
                raise OSError(_errno.EISCONN, _os.strerror(_errno.EISCONN))
            return super().sendto(data, *args)
        self._check_open()
        if len(args) == 2:
            args = (args[1],)  # (data, flags, address)
        if len(args) != 1:
            raise TypeError("sendto() takes 2 or 3 arguments")
        host, port = _split_address(args[0], "sendto")
        return self._send_datagram(data, resolve_virtual(host), port)

    def _send_datagram(self, data: Any, remote: Addr, port: int) -> int:
        state = self._pilot
        assert state is not None
        payload = memoryview(data).cast("B")
        if len(payload) > MAX_DATAGRAM_PAYLOAD:
            raise OSError(_errno.EMSGSIZE, _os.strerror(_errno.EMSGSIZE))
        if not state.bound:
            self.bind(("", 0))
        header = remote.network.to_bytes(2, "big") + remote.node.to_bytes(4, "big") + port.to_bytes(2, "big")
        super().send(header + bytes(payload))
        return len(payload)

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        state = self._pilot
        if state is None or state.kind != _stdlib.SOCK_DGRAM:
            return super().recvfrom(bufsize, flags)
        self._check_open()
        if not state.bound:
            raise OSError(_errno.EINVAL, _os.strerror(_errno.EINVAL))
        while True:
            message = super().recv(bufsize + _DATAGRAM_PREFIX_BYTES, flags)
            if len(message) < _DATAGRAM_PREFIX_BYTES:
                if not message:
                    raise OSError(_errno.ECONNRESET, "pilotsock daemon closed the datagram channel")
                continue
            source = Addr(int.from_bytes(message[0:2], "big"), int.from_bytes(message[2:6], "big"))
            source_port = int.from_bytes(message[6:8], "big")
            if state.peer is not None and (source != state.peer or source_port != state.peer_port):
                continue  # a connected datagram socket only sees its peer, like UDP
            return message[_DATAGRAM_PREFIX_BYTES:], (str(source), source_port)

    def send(self, data: Any, flags: int = 0) -> int:
        state = self._pilot
        if state is None or state.kind != _stdlib.SOCK_DGRAM:
            if state is not None and state.connecting:
                self._settle()
            return super().send(data, flags)
        if state.peer is None:
            raise OSError(_errno.EDESTADDRREQ, _os.strerror(_errno.EDESTADDRREQ))
        return self._send_datagram(data, state.peer, state.peer_port)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        state = self._pilot
        if state is None or state.kind != _stdlib.SOCK_DGRAM:
            if state is not None and state.connecting:
                self._settle()
            return super().recv(bufsize, flags)
        return self.recvfrom(bufsize, flags)[0]

    def __repr__(self) -> str:
        if self._pilot is None:
            return super().__repr__()
        closed = getattr(self, "_closed", False)
        parts = [f"<pilotsock.socket.socket fd={self.fileno()}", "family=AF_PILOT",
                 f"type={_stdlib.SocketKind(self._pilot.kind).name}", "proto=0"]
        if not closed and self.fileno() != -1:
            try:
                parts.append(f"laddr={self.getsockname()}")
            except OSError:
                pass
            try:
                parts.append(f"raddr={self.getpeername()}")
            except OSError:
                pass
        return ("[closed] " if closed else "") + ", ".join(parts) + ">"


SocketType = socket  # type: ignore[misc,assignment]


def create_connection(  # type: ignore[no-redef]
        address: tuple[Any, int], timeout: Any = _stdlib._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
                      source_address: Any = None, **kwargs: Any) -> socket:
    """Like ``socket.create_connection``, for virtual addresses too."""
    host, port = address
    if to_virtual(host) is None and not is_pilot_name(host):
        return _stdlib.create_connection(address, timeout, source_address, **kwargs)
    sock = socket(AF_PILOT, _stdlib.SOCK_STREAM)
    try:
        if timeout is not _stdlib._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
            sock.settimeout(timeout)
        if source_address:
            sock.bind(source_address)
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock
