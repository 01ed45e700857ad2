# SPDX-License-Identifier: Apache-2.0
"""The virtual socket class behind ``pilotsock.socket.socket`` (``socket-design.md`` §1-3).

Where it sits: ring 3 (a client-side driver). A Pilot socket **is** a stdlib ``socket.socket``
whose real fd is an AF_UNIX socket owned jointly with the local daemon. Before connect it is a
plain unbound socket; ``bind``/``listen``/``connect`` turn the same fd number (``os.dup2``) into a
control connection to the daemon, and a successful ``connect``/``accept`` turns it into one end of
a socketpair that carries pure payload bytes. ``recv``/``send``/``makefile``/timeouts/non-blocking
mode therefore run in C on the real fd, exactly as the stdlib does; Python only guards the edges
(not connected, a connect still running, end of stream vs reset) and every method that takes or
returns an address. Sockets of other families are left completely to the stdlib class.
"""

from __future__ import annotations

import _thread
import errno as _errno
import os as _os
import socket as _stdlib
import struct
from typing import Any

from pilotsock.addresses import Addr
from pilotsock.client.locator import exchange, give_back, open_control, recv_frame, take_control
from pilotsock.client.names import AF_PILOT
from pilotsock.client.socket_base import (
    CONTROL_TIMEOUT,
    TYPE_MASK,
    SocketBase,
)
from pilotsock.client.socket_state import (
    PilotState,
    RawFrames,
    bad_fd,
    check_arguments,
    os_error,
    raise_for,
    reusable,
    split_address,
)
from pilotsock.client.stdlib import StdSocket
from pilotsock.unix_pair import both_directions_shut
from pilotsock.wire.local_api import parse_label

_LINGER = struct.Struct("ii")


def _option_value(value: int, buflen: int | None) -> int | bytes:
    """An emulated option as ``getsockopt`` returns it: the int, or ``buflen`` bytes."""
    return value if buflen is None else value.to_bytes(buflen, "little")[:buflen]


def _listener_lost() -> OSError:
    return OSError(_errno.ECONNABORTED, "pilotsock daemon closed the listener")


class socket(SocketBase):
    """``socket.socket`` with ``AF_PILOT`` support; other families behave exactly as the stdlib,
    except that a kernel-born socket binding or connecting to a virtual address turns virtual."""

    __slots__ = ()

    def __init__(self, family: int = -1, type: int = -1, proto: int = -1, fileno: int | None = None) -> None:
        if family != AF_PILOT:
            self._pilot: PilotState | None = None
            super().__init__(family, type, proto, fileno)
            if family == -1 and fileno is not None and super().family == _stdlib.AF_UNIX:
                self._adopt_if_labelled()
            return
        kind = (type if type != -1 else _stdlib.SOCK_STREAM) & TYPE_MASK
        if kind not in (_stdlib.SOCK_STREAM, _stdlib.SOCK_DGRAM):
            raise os_error(_errno.EPROTONOSUPPORT)
        flags = (type if type != -1 else 0) & ~TYPE_MASK
        unix_type = (_stdlib.SOCK_STREAM if kind == _stdlib.SOCK_STREAM else _stdlib.SOCK_SEQPACKET) | flags
        self._pilot = PilotState(kind)
        if fileno is None:
            super().__init__(_stdlib.AF_UNIX, unix_type, 0)
        else:
            super().__init__(_stdlib.AF_UNIX, unix_type, 0, fileno)
            self._recover_state()

    # -- identity ---------------------------------------------------------------------------

    @property
    def family(self) -> int:  # type: ignore[override]
        if self._pilot is not None:
            return self._pilot.born_family
        return super().family

    @property
    def type(self) -> int:  # type: ignore[override]
        if self._pilot is not None:
            return _stdlib.SocketKind(self._pilot.kind)
        return super().type

    def _label(self) -> tuple[Addr, int, Addr, int] | None:
        """The daemon's abstract label on the other end of our fd (G11), if it has one."""
        try:
            return parse_label(StdSocket.getpeername(self))
        except OSError:
            return None

    def _adopt_if_labelled(self) -> None:
        """``socket(fileno=fd)`` on a virtual stream's fd becomes AF_PILOT again (G11)."""
        if self._label() is not None:
            self._pilot = PilotState(_stdlib.SOCK_STREAM)
            self._recover_state()

    def _recover_state(self) -> None:
        """Rebuild addresses from the daemon's abstract label (socket-design.md G11)."""
        state = self._pilot
        assert state is not None
        label = self._label()
        if label is not None:
            state.peer, state.peer_port, state.local, state.local_port = label
            state.bound = True

    def __getstate__(self) -> Any:
        raise TypeError(f"cannot pickle {self.__class__.__name__!r} object")

    def _real_close(self, *args: Any) -> None:
        state = self._pilot
        if state is not None and state.conn_id is not None and state.kind == _stdlib.SOCK_STREAM:
            try:
                on, seconds = _LINGER.unpack(super().getsockopt(_stdlib.SOL_SOCKET, _stdlib.SO_LINGER, _LINGER.size))
            except OSError:
                on = 0
            if on and not seconds:  # like TCP: a zero linger time closes with a reset
                self._tell_daemon({"op": "stream_option", "conn": state.conn_id, "abort": True})
        super()._real_close(*args)  # type: ignore[misc]

    def dup(self) -> socket:
        twin = super().dup()
        if self._pilot is not None:
            twin._pilot = self._pilot.copy()
        return twin

    # -- addresses --------------------------------------------------------------------------

    def getsockname(self) -> Any:
        state = self._pilot
        if state is None:
            return super().getsockname()
        self._check_open()
        return self._shown(state, state.local if state.bound else None, state.local_port)

    def getpeername(self) -> Any:
        state = self._pilot
        if state is None:
            return super().getpeername()
        self._check_open()
        if state.peer is None or (state.connecting and self._connect_outcome() is None):
            raise os_error(_errno.ENOTCONN)
        if state.kind == _stdlib.SOCK_STREAM and self._was_reset(state):
            raise os_error(_errno.ENOTCONN)  # TCP has no peer after a reset (ssl relies on it, G1)
        return self._shown(state, state.peer, state.peer_port)

    # -- bind / listen / accept -------------------------------------------------------------

    def bind(self, address: Any) -> None:
        state = self._pilot
        if state is None:
            if not self._turns_virtual(address, "bind"):
                return super().bind(address)
            state, address = self._enter_virtual(address, binding=True)
        self._check_open()
        host, port = split_address(address, "bind")
        if state.bound or state.peer is not None:
            raise os_error(_errno.EINVAL)
        wanted = None if host in ("", None) else self._resolve(state, host)
        control = open_control(timeout=CONTROL_TIMEOUT)
        try:
            kind = "dgram" if state.kind == _stdlib.SOCK_DGRAM else "stream"
            reuse = bool(super().getsockopt(_stdlib.SOL_SOCKET, _stdlib.SO_REUSEADDR))
            reply, fds = exchange(control, {"op": "bind", "type": kind, "port": port, "reuse": reuse},
                                   CONTROL_TIMEOUT)
            raise_for(reply, fds)
            own = Addr(*reply["address"])
            if wanted is not None and not wanted.is_zero and wanted != own:
                for fd in fds:
                    _os.close(fd)
                raise os_error(_errno.EADDRNOTAVAIL)
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
        self.counters["virtual.bind"] += 1

    def listen(self, backlog: int = -1) -> None:
        state = self._pilot
        if state is None:
            return super().listen() if backlog == -1 else super().listen(backlog)
        self._check_open()
        if state.kind != _stdlib.SOCK_STREAM or state.peer is not None:
            raise os_error(_errno.EOPNOTSUPP if state.kind != _stdlib.SOCK_STREAM else _errno.EINVAL)
        if not state.bound:
            self.bind(("", 0))
        request: dict[str, Any] = {"op": "listen"}
        if backlog >= 0:
            request["backlog"] = backlog
        reply, fds = self._control_on_self(request, CONTROL_TIMEOUT)
        raise_for(reply, fds)
        state.listening = True

    def accept(self) -> tuple[_stdlib.socket, Any]:
        state = self._pilot
        if state is None:
            return super().accept()
        self._check_open()
        if not state.listening:
            raise os_error(_errno.EINVAL)
        if state.eof:
            raise _listener_lost()
        raw = RawFrames(self)
        while True:
            try:
                event, fds = recv_frame(raw)  # type: ignore[arg-type]
            except ConnectionResetError:
                if not state.listening:  # shut down meanwhile, like Linux
                    raise os_error(_errno.EINVAL) from None
                self._quiet_lost_listener()
                raise _listener_lost() from None
            if event.get("ev") == "accept" and fds:
                break
            for fd in fds:
                _os.close(fd)
        for extra in fds[1:]:
            _os.close(extra)
        # Like the stdlib, the accepted socket is of the plain class (an SSLSocket wraps it).
        conn = socket(AF_PILOT, _stdlib.SOCK_STREAM, 0, fileno=fds[0])
        conn_state = conn._pilot
        assert conn_state is not None
        conn_state.local, conn_state.local_port = state.local, int(event["local_port"])
        conn_state.peer, conn_state.peer_port = Addr(*event["peer"]), int(event["peer_port"])
        conn_state.bound = True
        conn_state.conn_id = event.get("conn")
        self.counters["virtual.accept"] += 1
        conn_state.born_family, conn_state.alias_host = state.born_family, state.alias_host
        if _stdlib.getdefaulttimeout() is None and self.gettimeout():
            conn.setblocking(True)
        return conn, self._shown(conn_state, conn_state.peer, conn_state.peer_port)

    def _quiet_lost_listener(self) -> None:
        """The daemon is gone: put a listening socket nobody connects to in place of our end of
        its control connection. The dead end would poll readable for ever, and every event loop
        that accepts on readiness (selectors, socketserver, asyncio) would spin at 100% CPU, like
        a kernel listener on a vanished interface it now stays quiet; accept() keeps raising."""
        assert self._pilot is not None
        self._pilot.eof = True
        quiet = StdSocket(_stdlib.AF_UNIX, _stdlib.SOCK_STREAM)
        try:
            quiet.bind("")  # an abstract name the kernel picks (Linux autobind)
            quiet.listen(1)
        except OSError:
            quiet.close()
            return  # best effort: the error is raised either way
        self._become(quiet)

    # -- connect ----------------------------------------------------------------------------

    def connect(self, address: Any) -> None:
        if self._pilot is None:
            if not self._turns_virtual(address, "connect"):
                return super().connect(address)
            address = self._enter_virtual(address)[1]
        self._connect(address)

    def _connect(self, address: Any) -> None:
        state = self._check_open()
        host, port = split_address(address, "connect")
        remote = self._resolve(state, host)
        if state.kind == _stdlib.SOCK_DGRAM:
            if not state.bound:
                self.bind(("", 0))
            state.peer, state.peer_port = remote, port
            return
        if state.connecting and self._connect_outcome() is None:
            raise os_error(_errno.EALREADY)
        if state.unreported:
            state.unreported = False
            if state.peer is not None:
                return
        if state.listening or state.peer is not None:
            raise os_error(_errno.EISCONN)
        request = {"op": "connect", "address": [remote.network, remote.node], "port": port,
                   "nodelay": bool(state.tcp_options.get(_stdlib.TCP_NODELAY, 0))}
        timeout = self.gettimeout()
        if timeout == 0.0:
            request["nonblocking"] = True
            timeout = CONTROL_TIMEOUT  # only the local exchange; the handshake goes on after it
        # Another thread may use the socket meanwhile (the peer can accept, write and close
        # before this thread has its reply): its recv/send wait for the outcome, as on a kernel
        # socket in SYN_SENT, instead of reading "not connected".
        dialing = state.dialing = _thread.allocate_lock()
        dialing.acquire()
        try:
            if state.bound:  # our fd is the control connection that holds the port
                reply, fds = self._control_on_self(request, timeout)
            else:
                request["reuse"] = bool(super().getsockopt(_stdlib.SOL_SOCKET, _stdlib.SO_REUSEADDR))
                reply, fds = self._dial_on(take_control(timeout=CONTROL_TIMEOUT), request, timeout)
            raise_for(reply, fds)
            for extra in fds[1:]:
                _os.close(extra)
            self._become(fds[0])
            state.bound = True
            state.local = Addr(*reply["address"])
            state.local_port = int(reply["local_port"])
            state.peer, state.peer_port = Addr(*reply["peer"]), int(reply["peer_port"])
            state.conn_id = reply.get("conn")
        finally:
            state.dialing = None
            dialing.release()
        self.counters["virtual.connect"] += 1
        if reply.get("pending"):
            self._start_pending_connect()
        # CPython connects a socket with a timeout in non-blocking mode and waits: Linux then
        # answers the next connect() with success, whatever the address, and only later EISCONN.
        state.unreported = timeout is not None

    def _dial_on(self, control: _stdlib.socket, request: dict[str, Any],
                 timeout: float | None) -> tuple[dict[str, Any], list[int]]:
        """The connect exchange on a control connection of the process. Once the daemon has
        answered with the stream, the connection is free again and is kept for the next dial;
        otherwise (refused, timed out, interrupted) it becomes our fd, so that closing this
        socket ends whatever the daemon still does for it."""
        try:
            reply, fds = exchange(control, request, timeout)
        except BaseException:
            self._become(control)
            raise
        if reply.get("ok") and fds:
            give_back(control)
        else:
            self._become(control)
        return reply, fds

    def connect_ex(self, address: Any) -> int:
        if self._pilot is None:
            if not self._turns_virtual(address, "connect"):
                return super().connect_ex(address)
            address = self._enter_virtual(address)[1]
        try:
            self._connect(address)
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
                raise os_error(_errno.ENOPROTOOPT)
            number = int.from_bytes(value, "little") if isinstance(value, bytes) else int(value)
            before = state.tcp_options.get(option, 0)
            state.tcp_options[option] = number
            if option == _stdlib.TCP_NODELAY and bool(number) != bool(before) and state.conn_id is not None:
                self._tell_daemon({"op": "stream_option", "conn": state.conn_id, "nodelay": bool(number)})
            return
        if state is not None and level == _stdlib.SOL_SOCKET:
            state.socket_options[option] = (value, optlen)
        if optlen is None:
            return super().setsockopt(level, option, value)
        return super().setsockopt(level, option, value, optlen)

    def getsockopt(self, level: int, option: int, buflen: Any = None) -> Any:
        state = self._pilot
        if state is not None:
            if level == _stdlib.IPPROTO_TCP:
                if state.kind != _stdlib.SOCK_STREAM:
                    raise os_error(_errno.ENOPROTOOPT)
                return _option_value(state.tcp_options.get(option, 0), buflen)
            if level == _stdlib.SOL_SOCKET and option == getattr(_stdlib, "SO_DOMAIN", -1):
                return _option_value(AF_PILOT, buflen)
            if level == _stdlib.SOL_SOCKET and option == _stdlib.SO_TYPE:
                return _option_value(state.kind, buflen)
            if level == _stdlib.SOL_SOCKET and option == _stdlib.SO_ERROR and state.connecting:
                return _option_value(self._connect_outcome() or 0, buflen)
        if buflen is None:
            return super().getsockopt(level, option)
        return super().getsockopt(level, option, buflen)

    # -- stream data: the bytes flow in C on the real fd; only the edges are Python ------------

    def _before_io(self, state: PilotState, sending: bool) -> None:
        """Slow path before stream I/O: not connected (the fd would be a control channel, or
        nothing), or a non-blocking connect that may still run."""
        if state.peer is None:
            if self.fileno() == -1:
                raise bad_fd()
            dialing = state.dialing
            if dialing is not None:  # another thread's connect() is under way: wait for it
                timeout = self.gettimeout()
                if not dialing.acquire(timeout=-1 if timeout is None else timeout):
                    raise os_error(_errno.EAGAIN) if timeout == 0.0 else TimeoutError("timed out")
                dialing.release()
            if state.peer is None:
                raise os_error(_errno.EPIPE if sending else _errno.ENOTCONN)  # kernel TCP's choices
        if state.connecting:
            self._settle()

    def _was_reset(self, state: PilotState) -> bool:
        """The daemon closes its end only when the connection is over; if this side never shut
        its writing half, the peer cannot have closed cleanly: it was reset (or gave up, or the
        daemon died)."""
        return not state.shut_write and both_directions_shut(self.fileno())

    def _end_of_stream(self, state: PilotState) -> None:
        """An empty read: a reset is reported once as ECONNRESET, as TCP does."""
        if state.eof:
            return
        state.eof = True
        if self._was_reset(state):
            raise os_error(_errno.ECONNRESET)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        state = self._pilot
        if state is None:
            return super().recv(bufsize, flags)
        if state.kind == _stdlib.SOCK_DGRAM:
            return self.recvfrom(bufsize, flags)[0]
        if state.peer is None or state.connecting:
            self._before_io(state, False)
        data = super().recv(bufsize, flags)
        if not data and bufsize:
            self._end_of_stream(state)
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        state = self._pilot
        if state is None:
            return super().recv_into(buffer, nbytes, flags)
        if state.kind == _stdlib.SOCK_DGRAM:
            return self.recvfrom_into(buffer, nbytes, flags)[0]
        if state.peer is None or state.connecting:
            self._before_io(state, False)
        count = super().recv_into(buffer, nbytes, flags)
        if not count and (nbytes or len(memoryview(buffer))):
            self._end_of_stream(state)
        return count

    def recvmsg(self, bufsize: int, ancbufsize: int = 0, flags: int = 0) -> tuple[bytes, list[Any], int, Any]:
        state = self._pilot
        if state is None:
            return super().recvmsg(bufsize, ancbufsize, flags)
        if state.kind == _stdlib.SOCK_DGRAM:
            check_arguments("recvmsg", bufsize, ancbufsize, flags)
            data, address, msg_flags = self._recv_datagram(bufsize, flags)
            return data, [], msg_flags, address
        if state.peer is None or state.connecting:
            self._before_io(state, False)
        data, ancillary, msg_flags, _ = super().recvmsg(bufsize, ancbufsize, flags)
        if not data and bufsize:
            self._end_of_stream(state)
        return data, ancillary, msg_flags, None

    def recvmsg_into(self, buffers: Any, ancbufsize: int = 0, flags: int = 0) -> tuple[int, list[Any], int, Any]:
        state = self._pilot
        if state is None:
            return super().recvmsg_into(buffers, ancbufsize, flags)
        if state.kind == _stdlib.SOCK_DGRAM:  # scatter one datagram over the buffers
            buffers = reusable(buffers, lambda b: check_arguments("recvmsg_into", b, ancbufsize, flags))
            check_arguments("recvmsg_into", buffers, ancbufsize, flags)
            buffers = [memoryview(b).cast("B") for b in buffers]
            data, address, msg_flags = self._recv_datagram(sum(len(b) for b in buffers), flags)
            offset = 0
            for view in buffers:
                piece = data[offset:offset + len(view)]
                view[:len(piece)] = piece
                offset += len(piece)
            return len(data), [], msg_flags, address
        buffers = [memoryview(b).cast("B") for b in buffers]
        if state.peer is None or state.connecting:
            self._before_io(state, False)
        count, ancillary, msg_flags, _ = super().recvmsg_into(buffers, ancbufsize, flags)
        if not count and any(len(b) for b in buffers):
            self._end_of_stream(state)
        return count, ancillary, msg_flags, None

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        state = self._pilot
        if state is None:
            return super().recvfrom(bufsize, flags)
        if state.kind != _stdlib.SOCK_DGRAM:
            return self.recv(bufsize, flags), None  # TCP reports no source address
        return self._recv_datagram(bufsize, flags)[:2]

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        state = self._pilot
        if state is None:
            return super().recvfrom_into(buffer, nbytes, flags)
        if state.kind != _stdlib.SOCK_DGRAM:
            return self.recv_into(buffer, nbytes, flags), None
        view = memoryview(buffer).cast("B")
        if nbytes < 0:
            raise ValueError("negative buffersize in recvfrom_into")
        if nbytes > len(view):
            raise ValueError("nbytes is greater than the length of the buffer")
        data, address, _ = self._recv_datagram(nbytes or len(view), flags)
        view[:len(data)] = data
        return len(data), address

    def send(self, data: Any, flags: int = 0) -> int:
        state = self._pilot
        if state is None:
            return super().send(data, flags)
        if state.kind == _stdlib.SOCK_DGRAM:
            return self._send_datagram(data, *self._datagram_peer(state))
        if state.peer is None or state.connecting:
            self._before_io(state, True)
        return super().send(data, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        state = self._pilot
        if state is None:
            return super().sendall(data, flags)
        if state.kind == _stdlib.SOCK_DGRAM:
            self.send(data, flags)
            return None
        if state.peer is None or state.connecting:
            self._before_io(state, True)
        return super().sendall(data, flags)

    def sendmsg(self, buffers: Any, ancdata: Any = (), flags: int = 0, address: Any = None) -> int:
        state = self._pilot
        if state is None:
            if address is None:
                return super().sendmsg(buffers, ancdata, flags)
            return super().sendmsg(buffers, ancdata, flags, address)
        if state.kind == _stdlib.SOCK_DGRAM:
            buffers = reusable(buffers, lambda b: check_arguments("sendmsg", b, ancdata, flags))
            ancdata = reusable(ancdata, lambda a: check_arguments("sendmsg", buffers, a, flags))
            check_arguments("sendmsg", buffers, ancdata, flags)
            payload = b"".join(memoryview(b).cast("B") for b in buffers)
            if address is None:
                return self.send(payload, flags)
            return self.sendto(payload, flags, address)
        if address is not None:
            split_address(address, "sendmsg")  # checked like the C layer would, then ignored as by TCP
        if state.peer is None or state.connecting:
            self._before_io(state, True)
        return super().sendmsg(buffers, ancdata, flags)

    def sendto(self, data: Any, *args: Any) -> int:
        state = self._pilot
        if state is None:
            if not (args and super().type == _stdlib.SOCK_DGRAM and self._turns_virtual(args[-1], "sendto")):
                return super().sendto(data, *args)
            state, target = self._enter_virtual(args[-1])
            args = (*args[:-1], target)
        if len(args) not in (1, 2):
            raise TypeError(f"sendto() takes 2 or 3 arguments ({len(args) + 1} given)")
        flags = args[0] if len(args) == 2 else 0
        if state.kind != _stdlib.SOCK_DGRAM:
            return self.send(data, flags)  # TCP ignores the address; unconnected is EPIPE
        self._check_open()
        host, port = split_address(args[-1], "sendto")
        return self._send_datagram(data, self._resolve(state, host), port)

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        state = self._pilot
        if state is not None and state.kind == _stdlib.SOCK_STREAM and (state.peer is None or state.connecting):
            self._before_io(state, True)
        return super().sendfile(file, offset, count)

    def shutdown(self, how: int) -> None:
        state = self._pilot
        if state is None:
            return super().shutdown(how)
        self._check_open()
        if how not in (_stdlib.SHUT_RD, _stdlib.SHUT_WR, _stdlib.SHUT_RDWR):
            return super().shutdown(how)  # the C layer's OverflowError/TypeError, or EINVAL
        if state.listening:
            if how != _stdlib.SHUT_WR:  # like Linux: the listener stops, accept() then fails
                state.listening = False
                super().shutdown(_stdlib.SHUT_RDWR)
            return None
        if state.peer is None:
            raise os_error(_errno.ENOTCONN)
        if state.kind == _stdlib.SOCK_DGRAM:
            return None  # nothing to tell a peer; the port stays bound until close
        if how != _stdlib.SHUT_RD:
            state.shut_write = True
        return super().shutdown(how)

    def __repr__(self) -> str:
        if self._pilot is None:
            return super().__repr__()
        closed = getattr(self, "_closed", False)
        head = "<pilotsock.socket.socket" + (" [closed]" if closed else "")
        parts = [f"{head} fd={self.fileno()}", f"family={self._pilot.born_family}",
                 f"type={_stdlib.SocketKind(self._pilot.kind)}", "proto=0"]
        if not closed and self.fileno() != -1:
            try:
                parts.append(f"laddr={self.getsockname()}")
            except OSError:
                pass
            try:
                parts.append(f"raddr={self.getpeername()}")
            except OSError:
                pass
        return ", ".join(parts) + ">"


