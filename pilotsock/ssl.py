# SPDX-License-Identifier: Apache-2.0
"""A drop-in for the stdlib ``ssl`` module whose contexts also wrap ``AF_PILOT`` sockets.

``import pilotsock.ssl as ssl`` gives every stdlib name (the same objects) except
``SSLContext``, ``SSLSocket`` and ``create_default_context``, whose contexts wrap virtual sockets
as well as kernel ones (``socket-design.md`` G1): the stdlib's ``SSLSocket`` rebuilds the socket
from ``sock.family``, which the C layer cannot use for AF_PILOT. Here the TLS socket is also a
virtual socket (multiple inheritance), so it connects, accepts and reports virtual addresses,
while OpenSSL reads and writes the real fd. Kernel sockets get the stdlib's own ``SSLSocket``.
``pilotsock.patch`` installs the same class into the stdlib's ``SSLContext`` for unchanged programs.
"""

from __future__ import annotations

import ssl as _stdlib
from ssl import *  # re-export every stdlib name as the same object
from typing import Any

from pilotsock.client.names import AF_PILOT as _AF_PILOT
from pilotsock.client.virtual_socket import socket as _VirtualSocket

__implements__ = ["SSLContext", "SSLSocket", "create_default_context"]
__imports__ = [name for name in dir(_stdlib) if not name.startswith("_") and name not in __implements__
               and name.isidentifier() and not isinstance(getattr(_stdlib, name), type(_stdlib))]
__extensions__: list[str] = []
__all__ = [*__implements__, *__imports__]


class SSLSocket(_stdlib.SSLSocket, _VirtualSocket):  # type: ignore[misc,no-redef]
    """TLS over a pilotsock socket (virtual, or kernel-born and possibly switching on connect);
    for a socket of any other class, ``_create`` returns a stdlib SSLSocket."""

    @classmethod
    def _create(cls, sock: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(sock, _VirtualSocket):
            return _stdlib.SSLSocket._create(sock, *args, **kwargs)  # type: ignore[attr-defined]
        state = sock._pilot
        if state is None:  # a kernel socket of pilotsock's class: it may still turn virtual (G5)
            return super()._create(sock, *args, **kwargs)  # type: ignore[misc]
        # Built from sock.family: a socket born AF_INET and switched (G5) must still be built
        # as a virtual one, and the TLS object then reports the family its socket reported.
        born, state.born_family = state.born_family, _AF_PILOT
        try:
            ssl_sock = super()._create(sock, *args, **kwargs)  # type: ignore[misc]
        finally:
            state.born_family = born
        ssl_sock._pilot = state.copy()  # options, bind/listen state: more than the fd's label tells
        return ssl_sock


class SSLContext(_stdlib.SSLContext):  # type: ignore[no-redef]
    sslsocket_class = SSLSocket


def create_default_context(  # type: ignore[no-redef]
        purpose: Any = _stdlib.Purpose.SERVER_AUTH, *, cafile: Any = None,
                           capath: Any = None, cadata: Any = None) -> SSLContext:
    """``ssl.create_default_context`` (the same settings), returning this module's context."""
    context = _stdlib.create_default_context(purpose, cafile=cafile, capath=capath, cadata=cadata)
    context.__class__ = SSLContext
    return context
