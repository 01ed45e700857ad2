# SPDX-License-Identifier: Apache-2.0
"""A user-space link emulator: a UDP forwarder on loopback with netem-like impairments.

    python -m pilotsock.testing.emulator --target HOST:PORT [--listen HOST:PORT] [--delay-ms 50]
        [--jitter-ms 0] [--loss 0.005] [--duplicate 0] [--reorder 0] [--corrupt 0]
        [--rate-mbps 0] [--queue-ms 200] [--mtu 0] [--seed 1] [--state-file FILE] [--max-seconds 600]

It sits in front of one daemon (registered with ``--endpoint`` = the emulator's front address):
datagrams that reach the front socket leave the back socket for ``--target``; replies from the
target leave the front socket for the last front-side sender. Each direction gets its own
impairments: one-way delay (so RTT = 2 x delay), jitter, random loss, duplication, reordering
(extra delay), bit corruption, a rate limit with a bounded queue (tail drop past
``--queue-ms``) and an MTU (the model of :mod:`pilotsock.testing.impairments`, which the
in-process simulated link uses too). All randomness comes from ``--seed``. The kernel's netem qdisc is not available
on the machines this project is tested on, hence this process. It stops by itself after
``--max-seconds`` (every load test here is bounded).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import selectors
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pilotsock.daemon.udp_endpoint import parse_host_port
from pilotsock.testing.impairments import ImpairedDirection, Impairments


@dataclass
class DirectionStats:
    received: int = 0
    sent: int = 0
    lost: int = 0
    duplicated: int = 0
    corrupted: int = 0
    queue_dropped: int = 0
    oversize: int = 0
    bytes: int = 0


class LinkEmulator:
    def __init__(self, target: tuple[str, int], impairments: Impairments, *, listen: tuple[str, int] = ("127.0.0.1", 0),
                 seed: int = 1, buffer_bytes: int = 8 << 20) -> None:
        self.target = target
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for sock in (self.front, self.back):
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                sock.setsockopt(socket.SOL_SOCKET, option, buffer_bytes)
            sock.setblocking(False)
        self.front.bind(listen)
        self.back.bind(("127.0.0.1", 0))
        self.front_address = self.front.getsockname()
        self.inbound_stats, self.outbound_stats = DirectionStats(), DirectionStats()
        self.inbound = ImpairedDirection(impairments, random.Random(seed), self.inbound_stats)  # towards the target
        self.outbound = ImpairedDirection(impairments, random.Random(seed + 1), self.outbound_stats)
        self._client: tuple[str, int] | None = None
        self._queue: list[tuple[float, int, int, bytes]] = []  # (due, seq, direction, data)
        self._seq = 0
        self._stop = False

    def stop(self) -> None:
        self._stop = True

    def _drain(self, sock: socket.socket, inbound: bool, now: float) -> None:
        direction = self.inbound if inbound else self.outbound
        for _ in range(1024):
            try:
                data, source = sock.recvfrom(70000)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            if inbound:
                self._client = source
            elif self._client is None:
                continue
            (self.inbound_stats if inbound else self.outbound_stats).received += 1
            for due, payload in direction.schedule(now, data):
                self._seq += 1
                heapq.heappush(self._queue, (due, self._seq, 0 if inbound else 1, payload))

    def _release(self, now: float) -> None:
        queue = self._queue
        while queue and queue[0][0] <= now:
            _, _, direction, payload = heapq.heappop(queue)
            address: tuple[str, int] | None
            if direction == 0:
                sock, address, stats = self.back, self.target, self.inbound_stats
            else:
                sock, address, stats = self.front, self._client, self.outbound_stats
            if address is None:
                continue
            try:
                sock.sendto(payload, address)
                stats.sent += 1
                stats.bytes += len(payload)
            except OSError:
                stats.queue_dropped += 1

    def run(self, max_seconds: float) -> None:
        deadline = time.monotonic() + max_seconds
        with selectors.DefaultSelector() as selector:
            selector.register(self.front, selectors.EVENT_READ, True)
            selector.register(self.back, selectors.EVENT_READ, False)
            while not self._stop:
                now = time.monotonic()
                if now >= deadline:
                    break
                self._release(now)
                timeout = min(0.5, deadline - now)
                if self._queue:
                    timeout = max(0.0, min(timeout, self._queue[0][0] - now))
                for key, _ in selector.select(timeout):
                    self._drain(key.fileobj, key.data, time.monotonic())  # type: ignore[arg-type]
        self.front.close()
        self.back.close()

    def stats(self) -> dict[str, object]:
        return {"inbound": vars(self.inbound_stats), "outbound": vars(self.outbound_stats)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pilotsock.testing.emulator",
                                     description="UDP link emulator with delay, loss, reordering and rate limits.")
    parser.add_argument("--target", required=True, metavar="HOST:PORT")
    parser.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay (RTT = 2 x delay)")
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--duplicate", type=float, default=0.0)
    parser.add_argument("--reorder", type=float, default=0.0)
    parser.add_argument("--corrupt", type=float, default=0.0)
    parser.add_argument("--rate-mbps", type=float, default=0.0, help="link rate in megabytes/s (0 = unlimited)")
    parser.add_argument("--queue-ms", type=float, default=200.0)
    parser.add_argument("--mtu", type=int, default=0, help="drop datagrams larger than this (0 = no limit)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--state-file", type=Path)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    impairments = Impairments(
        delay_seconds=args.delay_ms / 1000, jitter_seconds=args.jitter_ms / 1000, loss=args.loss,
        duplicate=args.duplicate, reorder=args.reorder, corrupt=args.corrupt,
        rate_bytes_per_second=args.rate_mbps * 1e6, queue_seconds=args.queue_ms / 1000, mtu=args.mtu,
    )
    emulator = LinkEmulator(parse_host_port(args.target), impairments, listen=parse_host_port(args.listen), seed=args.seed)
    signal.signal(signal.SIGTERM, lambda *_: emulator.stop())
    signal.signal(signal.SIGINT, lambda *_: emulator.stop())
    front = "%s:%d" % emulator.front_address
    if args.state_file:
        temporary = args.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps({"front": front, "pid": os.getpid()}))
        temporary.replace(args.state_file)
    print(f"pilotsock link emulator {front} -> {args.target}", flush=True)
    emulator.run(args.max_seconds)
    print(json.dumps(emulator.stats()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
