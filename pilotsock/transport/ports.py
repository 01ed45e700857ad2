# SPDX-License-Identifier: Apache-2.0
"""Port bindings and ephemeral allocation for one node (``wire.md`` §3, ``socket-design.md`` G8).

Where it sits: ring 2 (pure bookkeeping). The daemon asks it before binding, listening or dialing.

Rules:
- A port has at most one binding (bound socket or listener) per protocol.
- A port still used as the local port of a connection can be bound only when both the new
  binding and every such connection were made with ``reuse`` (SO_REUSEADDR; accepted connections
  inherit their listener's), as Linux checks ``sk_reuse`` on both sides.
- Ephemeral ports are allocated sequentially from 49152, wrapping at 65535, skipping ports in
  use; exhaustion is EADDRNOTAVAIL (the Go "return the last candidate" behaviour is a bug).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable

EPHEMERAL_FIRST = 49152
EPHEMERAL_LAST = 65535
MAX_PORT = 65535


class PortInUse(Exception):
    pass


class NoFreePort(Exception):
    pass


class PortTable:
    def __init__(self) -> None:
        self._bindings: dict[tuple[int, int], Hashable] = {}  # (protocol, port) -> owner
        self._connection_ports: Counter[tuple[int, int]] = Counter()  # live connections per port
        self._exclusive_ports: Counter[tuple[int, int]] = Counter()  # ... of which made without reuse
        self._next_ephemeral = EPHEMERAL_FIRST

    def owner(self, protocol: int, port: int) -> Hashable | None:
        return self._bindings.get((protocol, port))

    def is_free(self, protocol: int, port: int, *, reuse: bool = False) -> bool:
        key = (protocol, port)
        if key in self._bindings:
            return False
        if reuse:
            return self._exclusive_ports[key] == 0
        return self._connection_ports[key] == 0

    def bind(self, protocol: int, port: int, owner: Hashable, *, reuse: bool = False) -> int:
        """Bind ``port`` (0 = pick an ephemeral one) to ``owner``; returns the port."""
        if not 0 <= port <= MAX_PORT:
            raise ValueError(f"port {port} out of range")
        if port == 0:
            port = self.allocate_ephemeral(protocol)
        elif not self.is_free(protocol, port, reuse=reuse):
            raise PortInUse(port)
        self._bindings[(protocol, port)] = owner
        return port

    def release(self, protocol: int, port: int, owner: Hashable) -> None:
        key = (protocol, port)
        if self._bindings.get(key) is owner:
            del self._bindings[key]

    def allocate_ephemeral(self, protocol: int) -> int:
        span = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1
        for _ in range(span):
            port = self._next_ephemeral
            self._next_ephemeral = EPHEMERAL_FIRST if port >= EPHEMERAL_LAST else port + 1
            if self.is_free(protocol, port):
                return port
        raise NoFreePort()

    def connection_opened(self, protocol: int, port: int, *, reuse: bool = False) -> None:
        self._connection_ports[(protocol, port)] += 1
        if not reuse:
            self._exclusive_ports[(protocol, port)] += 1

    def connection_closed(self, protocol: int, port: int, *, reuse: bool = False) -> None:
        key = (protocol, port)
        for counts in (self._connection_ports,) if reuse else (self._connection_ports, self._exclusive_ports):
            counts[key] -= 1
            if counts[key] <= 0:
                del counts[key]
