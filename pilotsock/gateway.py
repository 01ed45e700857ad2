# SPDX-License-Identifier: Apache-2.0
"""Bridges between kernel TCP and Pilot streams, for tools that cannot load pilotsock.

- ``gateway``: listen on a local TCP port; each connection is forwarded to a fixed Pilot
  ``address:port`` (curl or a browser -> a service on the Pilot network).
- ``expose``: listen on a Pilot port of this node; each connection is forwarded to a fixed local
  TCP ``host:port`` (the Pilot network -> a local database or web server).

Where it sits: ring 3 (a driver). One asyncio loop; each direction copies with ``drain()`` after
every write, so a slow side holds the other back (back-pressure); an end of stream on one side is
passed on as a half-close, and the pair closes when both directions are done or one side fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket as kernel
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pilotsock import socket as psocket

log = logging.getLogger("pilotsock.gateway")

CHUNK_BYTES = 256 * 1024


@dataclass
class BridgeStats:
    connections: int = 0
    failed: int = 0
    bytes_in: int = 0  # towards the target
    bytes_out: int = 0  # back from the target
    active: set[asyncio.Task[None]] = field(default_factory=set)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: Callable[[int], None]) -> None:
    try:
        while data := await reader.read(CHUNK_BYTES):
            writer.write(data)
            count(len(data))
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.transport.abort()


async def bridge(left: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 right: tuple[asyncio.StreamReader, asyncio.StreamWriter], stats: BridgeStats) -> None:
    """Copy both ways until both ends have finished, then close both."""

    def inbound(n: int) -> None:
        stats.bytes_in += n

    def outbound(n: int) -> None:
        stats.bytes_out += n

    try:
        await asyncio.gather(_copy(left[0], right[1], inbound), _copy(right[0], left[1], outbound))
    finally:
        for _, writer in (left, right):
            writer.close()
        for _, writer in (left, right):
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def open_pilot_connection(host: str, port: int, timeout: float) -> tuple[asyncio.StreamReader,
                                                                               asyncio.StreamWriter]:
    """``asyncio.open_connection`` to a virtual address (non-blocking connect on the loop)."""
    loop = asyncio.get_running_loop()
    sock = psocket.socket(psocket.AF_PILOT, kernel.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock, limit=CHUNK_BYTES)


Opener = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


def _handler(open_target: Opener, stats: BridgeStats, describe: str) -> Callable[
        [asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats.connections += 1
        task = asyncio.current_task()
        if task is not None:
            stats.active.add(task)
        try:
            try:
                target = await open_target()
            except (OSError, asyncio.TimeoutError) as exc:
                stats.failed += 1
                log.warning("%s: %s", describe, exc)
                writer.transport.abort()
                return
            await bridge((reader, writer), target, stats)
        finally:
            if task is not None:
                stats.active.discard(task)

    return handle


async def start_gateway(listen: tuple[str, int], target: tuple[str, int], *, connect_timeout: float = 10.0,
                        stats: BridgeStats | None = None) -> tuple[asyncio.Server, BridgeStats]:
    """Local TCP ``listen`` -> Pilot ``target``."""
    stats = stats or BridgeStats()

    def open_target() -> Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        return open_pilot_connection(target[0], target[1], connect_timeout)

    server = await asyncio.start_server(_handler(open_target, stats, f"to {target[0]}:{target[1]}"),
                                        listen[0], listen[1], limit=CHUNK_BYTES)
    return server, stats


async def start_expose(pilot_port: int, target: tuple[str, int], *, connect_timeout: float = 10.0,
                       stats: BridgeStats | None = None) -> tuple[asyncio.Server, BridgeStats]:
    """Pilot port ``pilot_port`` of this node -> local TCP ``target``."""
    stats = stats or BridgeStats()

    def open_target() -> Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        return asyncio.wait_for(asyncio.open_connection(target[0], target[1], limit=CHUNK_BYTES), connect_timeout)

    listener = psocket.create_server(("", pilot_port), family=psocket.AF_PILOT)
    server = await asyncio.start_server(_handler(open_target, stats, f"to {target[0]}:{target[1]}"),
                                        sock=listener, limit=CHUNK_BYTES)
    return server, stats


def split_host_port(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT``; the host may be a canonical virtual address (whose
    own colon is kept) or its URL-safe alias."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"bad port in {text!r}")
    return host or default_host, int(port)


def run(start: Callable[[], Awaitable[tuple[asyncio.Server, BridgeStats]]], banner: Callable[[asyncio.Server], str]
        ) -> int:
    """Serve until Ctrl-C or SIGTERM, then close the listener and the open bridges."""
    import signal

    async def main() -> None:
        server, stats = await start()
        print(banner(server), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, stop.set)
        async with server:
            await stop.wait()
        for task in list(stats.active):
            task.cancel()
        print(f"closed: {stats.connections} connections ({stats.failed} failed), "
              f"{stats.bytes_in} bytes in, {stats.bytes_out} bytes out", flush=True)

    asyncio.run(main())
    return 0
