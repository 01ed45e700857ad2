# SPDX-License-Identifier: Apache-2.0
"""A drop-in for the stdlib ``socket`` module that adds ``AF_PILOT`` virtual sockets.

``import pilotsock.socket as socket`` gives every stdlib name (the same objects) plus ``AF_PILOT``;
``socket.socket(AF_PILOT, SOCK_STREAM)`` connects to virtual addresses like
``('0:0000.0000.0005', 80)`` (or the URL-safe ``'0-0000-0000-0005.pilot'``). The class lives in
:mod:`pilotsock.client.virtual_socket`, name resolution in :mod:`pilotsock.client.names`.
"""

from __future__ import annotations

import os as _os
import socket as _stdlib
from socket import *  # re-export every stdlib name as the same object
from typing import Any

from pilotsock.addresses import is_virtual_host
from pilotsock.client import stdlib as std
from pilotsock.client.names import AF_PILOT as AF_PILOT
from pilotsock.client.names import getaddrinfo as getaddrinfo
from pilotsock.client.names import getfqdn as getfqdn
from pilotsock.client.names import gethostbyaddr as gethostbyaddr
from pilotsock.client.names import gethostbyname as gethostbyname
from pilotsock.client.names import gethostbyname_ex as gethostbyname_ex
from pilotsock.client.names import getnameinfo as getnameinfo
from pilotsock.client.names import resolve_virtual as resolve_virtual
from pilotsock.client.virtual_socket import socket as socket
from pilotsock.wire.local_api import MAX_DATAGRAM_PAYLOAD as MAX_DATAGRAM_PAYLOAD

# The declared surface (gevent style), enforced by tests/e2e/test_socket_features.py:
# __implements__ replace stdlib names, __imports__ are the stdlib's own objects, __extensions__
# exist only here.
__implements__ = ["socket", "SocketType", "create_connection", "create_server", "fromfd", "getaddrinfo",
                  "getnameinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getfqdn"]
__extensions__ = ["AF_PILOT", "MAX_DATAGRAM_PAYLOAD", "resolve_virtual"]
__imports__ = [name for name in _stdlib.__all__ if name not in __implements__]
__all__ = [*__implements__, *__imports__, *__extensions__]

SocketType = socket  # type: ignore[misc,assignment]


def create_connection(  # type: ignore[no-redef]
        address: tuple[Any, int], timeout: Any = _stdlib._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
                      source_address: Any = None, **kwargs: Any) -> socket:
    """Like ``socket.create_connection``, for virtual addresses too."""
    host, port = address
    if not is_virtual_host(host):
        return std.create_connection(address, timeout, source_address, **kwargs)
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


def create_server(  # type: ignore[no-redef]
        address: tuple[Any, int], *, family: int = _stdlib.AF_INET, backlog: int | None = None,
                  reuse_port: bool = False, dualstack_ipv6: bool = False) -> socket:
    """Like ``socket.create_server``; an ``AF_PILOT`` family or a virtual host listens on Pilot."""
    host = address[0]
    if family != AF_PILOT and not is_virtual_host(host):
        return std.create_server(address, family=family, backlog=backlog, reuse_port=reuse_port,
                                     dualstack_ipv6=dualstack_ipv6)
    if dualstack_ipv6 or reuse_port:
        raise ValueError("dualstack_ipv6 and reuse_port are not supported on AF_PILOT")
    sock = socket(AF_PILOT, _stdlib.SOCK_STREAM)
    try:
        sock.setsockopt(_stdlib.SOL_SOCKET, _stdlib.SO_REUSEADDR, 1)
        sock.bind(address)
        if backlog is None:
            sock.listen()
        else:
            sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def fromfd(  # type: ignore[no-redef]
        fd: Any, family: int, type: int, proto: int = 0) -> socket:
    """Like ``socket.fromfd`` (a duplicate of ``fd``), building this module's class."""
    return socket(family, type, proto, _os.dup(fd))
