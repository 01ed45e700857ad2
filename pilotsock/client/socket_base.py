# SPDX-License-Identifier: Apache-2.0
"""Plumbing of a virtual socket: the fd switches, the control exchange, the non-blocking connect
machinery (G6), datagram framing (G12) and the switch of a kernel-born socket (G5).

Where it sits: ring 3 (client side). :class:`SocketBase` sits between the stdlib class and the
public :class:`pilotsock.client.virtual_socket.socket`, so ``super()`` here is the stdlib's C
implementation; the public class keeps the stdlib's method surface.
"""

from __future__ import annotations

import _socket
import contextlib
import errno as _errno
import os as _os
import select as _select
import socket as _stdlib
from collections import Counter
from collections.abc import Iterator
from typing import Any, ClassVar

from pilotsock.addresses import Addr, is_virtual_host
from pilotsock.client.locator import exchange, recv_frame, request
from pilotsock.client.names import own_address, resolve_virtual
from pilotsock.client.socket_state import PilotState, os_error
from pilotsock.client.stdlib import StdSocket
from pilotsock.endpoints import is_loopback_host
from pilotsock.errors import ErrorCode, MalformedFrame, make_error
from pilotsock.wire.local_api import CONNECT_GUARD_BYTES, DATAGRAM_ADDRESS, MAX_DATAGRAM_PAYLOAD

TYPE_MASK = ~(getattr(_stdlib, "SOCK_NONBLOCK", 0) | getattr(_stdlib, "SOCK_CLOEXEC", 0))
CONTROL_TIMEOUT = 10.0
_CARRIED_OPTIONS = ("SO_REUSEADDR", "SO_KEEPALIVE", "SO_BROADCAST", "SO_OOBINLINE")


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "", "0.0.0.0"})


def is_loopback_target(address: object) -> bool:
    """Does this AF_INET/AF_INET6 address reach the kernel's loopback (127/8, ::1, v4-mapped
    loopback, ``localhost``)?"""
    return (isinstance(address, tuple) and len(address) > 0 and isinstance(address[0], str)
            and is_loopback_host(address[0]))


def names_virtual_host(address: object) -> bool:
    """True for an (host, port, ...) address whose host is a virtual node."""
    if not isinstance(address, tuple) or len(address) < 2:
        return False
    return isinstance(address[0], str) and is_virtual_host(address[0])


class SocketBase(StdSocket):
    __slots__ = ("_pilot",)
    _pilot: PilotState | None
    # Compat mode (socket-design.md §5), set process-wide by pilotsock.patch: IPv4 loopback names
    # and wildcard binds mean this node, and such sockets keep reporting 127.0.0.1 addresses.
    loopback_alias = False
    # Strict mode (compat_tests --strict): a connect that would reach the kernel's loopback raises,
    # so a suite cannot pass by quietly bypassing the virtual stack.
    strict_loopback = False
    # Process-wide proof of which stack carried the traffic (compat_tests reads it at exit).
    counters: ClassVar[Counter[str]] = Counter()

    def _turns_virtual(self, address: object, action: str) -> bool:
        """G5: is this kernel-born socket being pointed at a virtual address (or, in compat
        mode, at the IPv4 loopback)? Internet sockets that stay on the kernel are counted."""
        family = super().family
        if family not in (_stdlib.AF_INET, _stdlib.AF_INET6):
            return False
        if names_virtual_host(address) or (
                self.loopback_alias and family == _stdlib.AF_INET and isinstance(address, tuple)
                and len(address) == 2 and address[0] in LOOPBACK_HOSTS):
            return True
        self.counters[f"kernel.{action}"] += 1
        if self.strict_loopback and action == "connect" and is_loopback_target(address):
            raise PermissionError(_errno.EACCES, f"pilotsock strict mode: kernel loopback connect to {address!r}")
        return False

    def _enter_virtual(self, address: tuple[Any, ...], *, binding: bool = False) -> tuple[PilotState, tuple[Any, Any]]:
        """Switch (G5) for ``address``; a loopback alias makes the socket report 127.0.0.1. A
        port the kernel socket was bound to (``create_connection(source_address=...)``) is
        bound again on this node before a connect."""
        kernel_port = 0 if binding else int(super().getsockname()[1])
        state = self._switch_to_virtual()
        if not names_virtual_host(address):
            state.alias_host = "127.0.0.1"
        if kernel_port:
            self.bind(("", kernel_port))
        return state, (address[0], address[1])

    def _resolve(self, state: PilotState, host: object) -> Addr:
        """A host in an address given to this socket, as a virtual address."""
        if state.alias_host is not None and host in LOOPBACK_HOSTS:
            return own_address()
        return resolve_virtual(host)

    def _shown(self, state: PilotState, address: Addr | None, port: int) -> tuple[str, int]:
        """An address as this socket reports it: canonical text, or the loopback alias for this
        node's own address on a compat-mode socket."""
        if state.alias_host is not None and (address is None or address.is_zero or address == own_address()):
            return state.alias_host, port
        return str(address if address is not None else Addr(0, 0)), port

    def _switch_to_virtual(self) -> PilotState:
        """G5: a socket born AF_INET/AF_INET6 that binds, connects or sends to a virtual address
        becomes virtual on the same object and fd number (an AF_UNIX socket now); options set
        so far come along, and it keeps reporting the family it was born with (G10)."""
        kind = int(super().type) & TYPE_MASK
        if self.fileno() == -1:
            raise os_error(_errno.EBADF)
        if kind not in (_stdlib.SOCK_STREAM, _stdlib.SOCK_DGRAM):
            raise os_error(_errno.EPROTONOSUPPORT)
        state = PilotState(kind)
        state.born_family = int(super().family)
        for name in _CARRIED_OPTIONS:
            option = getattr(_stdlib, name, None)
            if option is not None:
                value = super().getsockopt(_stdlib.SOL_SOCKET, option)
                if value:
                    state.socket_options[option] = (value, None)
        linger = super().getsockopt(_stdlib.SOL_SOCKET, _stdlib.SO_LINGER, 8)
        if any(linger):
            state.socket_options[_stdlib.SO_LINGER] = (linger, None)
        if kind == _stdlib.SOCK_STREAM:
            state.tcp_options[_stdlib.TCP_NODELAY] = super().getsockopt(_stdlib.IPPROTO_TCP, _stdlib.TCP_NODELAY)
        unix_type = _stdlib.SOCK_STREAM if kind == _stdlib.SOCK_STREAM else _stdlib.SOCK_SEQPACKET
        fresh = StdSocket(_stdlib.AF_UNIX, unix_type)
        self._pilot = state
        self._become(fresh)
        # G5(b): the C object must know its fd is AF_UNIX now, or C-level address calls would
        # use AF_INET buffers. Re-initialising it in place is a CPython implementation detail,
        # covered by a test per Python version.
        timeout = self.gettimeout()
        _socket.socket.__init__(self, _stdlib.AF_UNIX, unix_type, 0, self.fileno())
        super().settimeout(timeout)
        return state

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
        if self._pilot is not None:  # G5(c): options set on the old fd belong to the socket
            for option, (value, optlen) in self._pilot.socket_options.items():
                try:
                    if optlen is None:
                        super().setsockopt(_stdlib.SOL_SOCKET, option, value)
                    else:
                        super().setsockopt(_stdlib.SOL_SOCKET, option, value, optlen)
                except OSError:
                    pass

    @contextlib.contextmanager
    def _own_view(self) -> Iterator[_stdlib.socket]:
        """A plain AF_UNIX socket object on a dup of our fd, for blocking frame I/O with its own
        timeout; O_NONBLOCK is shared with the dup, so our timeout is re-applied afterwards."""
        own_timeout = self.gettimeout()
        view = StdSocket(_stdlib.AF_UNIX, _stdlib.SOCK_STREAM, 0, _os.dup(self.fileno()))
        try:
            yield view
        finally:
            view.close()
            super().settimeout(own_timeout)

    def _control_on_self(self, message: dict[str, Any], timeout: float | None) -> tuple[dict[str, Any], list[int]]:
        """Exchange on our own fd (which is a control connection), preserving our timeout."""
        with self._own_view() as view:
            return exchange(view, message, timeout)

    def _check_open(self) -> PilotState:
        if self.fileno() == -1:
            raise os_error(_errno.EBADF)
        assert self._pilot is not None
        return self._pilot

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
            raise os_error(number) from None
        if sent != CONNECT_GUARD_BYTES:
            raise os_error(_errno.ENOBUFS)
        raise os_error(_errno.EINPROGRESS)

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
            raise os_error(_errno.EAGAIN)
        if outcome:
            raise os_error(outcome)

    def _tell_daemon(self, message: dict[str, Any]) -> None:
        """A change to a live stream (e.g. TCP_NODELAY after connect), on the process's own
        control connection (``locator.request``); a stream the daemon no longer knows needs no
        change."""
        try:
            request(message, timeout=CONTROL_TIMEOUT)
        except OSError:
            pass

    def _datagram_peer(self, state: PilotState) -> tuple[Addr, int]:
        if state.peer is None:
            self._check_open()
            raise os_error(_errno.EDESTADDRREQ)
        return state.peer, state.peer_port

    def _send_datagram(self, data: Any, remote: Addr, port: int) -> int:
        state = self._pilot
        assert state is not None
        payload = memoryview(data).cast("B")
        if len(payload) > MAX_DATAGRAM_PAYLOAD:
            raise os_error(_errno.EMSGSIZE)
        if not state.bound:
            self.bind(("", 0))
        super().send(DATAGRAM_ADDRESS.pack(remote.network, remote.node, port) + bytes(payload))
        self.counters["virtual.datagram"] += 1
        return len(payload)

    def _recv_datagram(self, bufsize: int, flags: int) -> tuple[bytes, Any, int]:
        """One datagram: (payload, source, msg_flags), MSG_TRUNC set when it was cut short."""
        state = self._check_open()
        if bufsize < 0:
            raise ValueError("negative buffersize in recvfrom")
        if not state.bound:
            self.bind(("", 0))  # like UDP: an unbound socket just receives nothing (yet)
        while True:
            message, _, msg_flags, _ = super().recvmsg(bufsize + DATAGRAM_ADDRESS.size, 0, flags)
            if len(message) < DATAGRAM_ADDRESS.size:
                if not message:
                    raise OSError(_errno.ECONNRESET, "pilotsock daemon closed the datagram channel")
                continue
            network, node, source_port = DATAGRAM_ADDRESS.unpack_from(message)
            source = Addr(network, node)
            if state.peer is not None and (source != state.peer or source_port != state.peer_port):
                continue  # a connected datagram socket only sees its peer, like UDP
            return (message[DATAGRAM_ADDRESS.size:], self._shown(state, source, source_port),
                    msg_flags & _stdlib.MSG_TRUNC)
