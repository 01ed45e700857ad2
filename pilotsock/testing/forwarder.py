# SPDX-License-Identifier: Apache-2.0
"""A user-space UDP forwarder on loopback that records what crosses it.

It sits in front of one daemon (registered with ``--endpoint`` = the forwarder's front address):
datagrams arriving at the front socket go to the target from a back socket, and replies from the
target go back to the last front-side sender. Recording keeps the first bytes of every datagram so
tests can prove what is on the wire (e.g. only PILA/PILS frames, no plaintext).
"""

from __future__ import annotations

import selectors
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class Recorded:
    direction: str  # "in" (towards the target) or "out"
    size: int
    head: bytes


@dataclass
class UdpForwarder:
    target: tuple[str, int] | None = None
    record_bytes: int = 64
    records: list[Recorded] = field(default_factory=list)
    max_records: int = 2_000_000

    def __post_init__(self) -> None:
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        for sock in (self.front, self.back):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.front_address = self.front.getsockname()
        self._client: tuple[str, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="udp-forwarder", daemon=True)
        self.contains: list[bytes] = []  # byte strings to search for in every datagram
        self.matches = 0

    def start(self) -> UdpForwarder:
        self._thread.start()
        return self

    def _record(self, direction: str, data: bytes) -> None:
        if len(self.records) < self.max_records:
            self.records.append(Recorded(direction, len(data), data[: self.record_bytes]))
        for needle in self.contains:
            if needle in data:
                self.matches += 1

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.front, selectors.EVENT_READ, "front")
            selector.register(self.back, selectors.EVENT_READ, "back")
            while not self._stop.is_set():
                for key, _ in selector.select(0.1):
                    sock = key.fileobj
                    try:
                        data, source = sock.recvfrom(70000)  # type: ignore[union-attr]
                    except OSError:
                        continue
                    if key.data == "front":
                        self._client = source
                        self._record("in", data)
                        if self.target is not None:
                            self.back.sendto(data, self.target)
                    elif self._client is not None:
                        self._record("out", data)
                        self.front.sendto(data, self._client)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
        self.front.close()
        self.back.close()
