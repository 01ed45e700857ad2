# SPDX-License-Identifier: Apache-2.0
"""Python-side state of a virtual socket and the small helpers its class shares.

Where it sits: ring 3 (client side), used only by :mod:`pilotsock.client.virtual_socket`.
"""

from __future__ import annotations

import errno as _errno
import os as _os
import socket as _stdlib
from _thread import LockType
from collections.abc import Callable
from typing import Any

from pilotsock.addresses import Addr
from pilotsock.client.stdlib import StdSocket
from pilotsock.errors import ErrorCode, make_error


class PilotState:
    """Python-side state of a virtual socket."""

    __slots__ = (
        "alias_host",
        "born_family",
        "bound",
        "conn_id",
        "connecting",
        "dialing",
        "eof",
        "kind",
        "listening",
        "local",
        "local_port",
        "peer",
        "peer_port",
        "saved_sndbuf",
        "shut_write",
        "socket_options",
        "tcp_options",
        "unreported",
    )

    def __init__(self, kind: int) -> None:
        self.kind = kind  # SOCK_STREAM or SOCK_DGRAM
        self.born_family = 80  # AF_PILOT, or AF_INET/AF_INET6 for a switched socket (G10)
        self.alias_host: str | None = None  # compat mode: addresses of this node shown as this host
        self.local: Addr | None = None
        self.local_port = 0
        self.peer: Addr | None = None
        self.peer_port = 0
        self.listening = False
        self.bound = False
        self.tcp_options: dict[int, int] = {}
        self.connecting = False  # a non-blocking connect is in progress (G6)
        self.dialing: LockType | None = None  # held while a thread waits in a blocking connect()
        self.saved_sndbuf = 0
        self.unreported = False  # like Linux: the first connect() after it completes returns 0
        self.shut_write = False  # shutdown(SHUT_WR) was called: an end of stream is then no reset
        self.eof = False  # an end of stream (or a reset) was reported already
        self.socket_options: dict[int, tuple[Any, Any]] = {}  # SOL_SOCKET options, replayed on new fds
        self.conn_id: int | None = None  # the daemon's id of our stream, for live option changes

    def copy(self) -> PilotState:
        twin = PilotState(self.kind)
        for name in self.__slots__:
            value = getattr(self, name)
            setattr(twin, name, dict(value) if isinstance(value, dict) else value)
        return twin


def os_error(number: int) -> OSError:
    """``OSError(number, strerror)``; the constructor picks the PEP 3151 subclass."""
    return OSError(number, _os.strerror(number))


def bad_fd() -> OSError:
    return os_error(_errno.EBADF)


def check_port(port: object, method: str) -> int:
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError(f"'{type(port).__name__}' object cannot be interpreted as an integer")
    if not 0 <= port <= 0xFFFF:
        raise OverflowError(f"{method}(): port must be 0-65535.")
    return port


def check_arguments(method: str, *args: Any) -> None:
    """Let the C socket layer judge ``method``'s arguments (TypeError, ValueError, OverflowError
    with its own messages) where pilotsock emulates the call: it parses them before any system
    call, so a closed probe socket answers EBADF exactly when they are acceptable."""
    probe = StdSocket(_stdlib.AF_UNIX, _stdlib.SOCK_DGRAM)
    probe.close()
    try:
        getattr(StdSocket, method)(probe, *args)
    except OSError as exc:
        if exc.errno != _errno.EBADF:
            raise


def reusable(items: Any, check: Callable[[Any], None]) -> Any:
    """``items`` (a buffer or ancillary-data iterable) as a list that can be checked, then used;
    what is not iterable at all gets the C layer's own error from ``check(items)``."""
    if isinstance(items, (list, tuple)):
        return items
    try:
        return list(items)
    except TypeError:
        check(items)
        raise


def split_address(address: object, method: str) -> tuple[object, int]:
    if not isinstance(address, tuple) or len(address) != 2:
        raise TypeError(f"{method}(): AF_PILOT address must be tuple, not {type(address).__name__}")
    host, port = address
    return host, check_port(port, method)


def raise_for(reply: dict[str, Any], fds: list[int]) -> None:
    if reply.get("ok"):
        return
    for fd in fds:
        _os.close(fd)
    raise make_error(int(reply.get("code", ErrorCode.INTERNAL)), reply.get("detail") or None)


class RawFrames:
    """Frame reads on a listener's own fd through the C ``recvmsg`` (ours refuses: no peer)."""

    __slots__ = ("sock",)

    def __init__(self, sock: _stdlib.socket) -> None:
        self.sock = sock

    def recvmsg(self, bufsize: int, ancbufsize: int = 0, flags: int = 0) -> tuple[bytes, list[Any], int, Any]:
        return StdSocket.recvmsg(self.sock, bufsize, ancbufsize, flags)
