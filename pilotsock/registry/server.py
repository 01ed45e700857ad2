# SPDX-License-Identifier: Apache-2.0
"""Registry and beacon driver: asyncio TCP server, UDP beacon socket, periodic reaper.

Where it sits (driver ring): TCP bytes → ``RegistryFrameDecoder`` → ``RegistryService.handle``
→ ``encode_registry_message`` → TCP; UDP datagram → ``BeaconService.handle`` → ``sendto``.

Implements the transport rules of ``wire.md`` §10.1 (``[u32 len][JSON]`` frames ≤ 1 MiB,
lock-step request/response, 5-minute idle read deadline) and the beacon socket of §9 (4 MiB
receive buffer). A frame that is too long or not a JSON object closes that connection only;
nothing a client sends can stop the server. The beacon socket is read with ``add_reader`` and
drained until ``EAGAIN`` (``performance.md``), not through ``DatagramProtocol``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pilotsock.endpoints import format_host_port
from pilotsock.errors import MalformedFrame
from pilotsock.registry.beacon import BeaconService
from pilotsock.registry.service import RegistryService, error_response
from pilotsock.registry.store import RegistryStore
from pilotsock.wire.registry_messages import RegistryFrameDecoder, encode_registry_message

_log = logging.getLogger(__name__)

DEFAULT_REGISTRY_ADDRESS = ("127.0.0.1", 9000)  # loopback only; never a public host
DEFAULT_BEACON_ADDRESS = ("127.0.0.1", 9001)
IDLE_TIMEOUT_SECONDS = 300.0  # §10.1: 5-minute idle read deadline
REAP_INTERVAL_SECONDS = 60.0  # §10.4: reaper runs every 60 s
BEACON_RECEIVE_BUFFER_BYTES = 4 << 20  # §9: 4 MiB UDP receive buffer
MAX_DATAGRAM_BYTES = 65535
# Fairness bound: after this many datagrams in one wake-up, yield to the TCP side; the reader
# callback fires again at once if more are queued.
MAX_DATAGRAMS_PER_WAKEUP = 1024
READ_CHUNK_BYTES = 65536


@dataclass(frozen=True)
class RegistryServerConfig:
    """Everything the server needs. Ports may be 0 (the kernel picks; see the bound addresses).

    ``beacon`` None runs no beacon. ``beacon_advertise`` overrides the address ``beacon_list``
    reports for the co-located beacon (useful when it is bound to a wildcard address).
    """

    db_path: str
    listen: tuple[str, int] = DEFAULT_REGISTRY_ADDRESS
    beacon: tuple[str, int] | None = DEFAULT_BEACON_ADDRESS
    beacon_advertise: str | None = None
    idle_timeout_seconds: float = IDLE_TIMEOUT_SECONDS
    reap_interval_seconds: float = REAP_INTERVAL_SECONDS
    max_connections: int = 4096


class RegistryServer:
    """Runs one registry (and optionally its beacon) on the current event loop.

    Usage: ``await server.start()``, read ``registry_address``/``beacon_address``, later
    ``await server.close()``. Clocks are injectable for tests: ``wall_clock`` gives unix seconds
    for the registry, ``monotonic`` gives beacon times.
    """

    def __init__(
        self,
        config: RegistryServerConfig,
        *,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self.store: RegistryStore | None = None
        self.service: RegistryService | None = None
        self.beacon = BeaconService()
        self._tcp_server: asyncio.Server | None = None
        self._beacon_socket: socket.socket | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self.registry_address: tuple[str, int] = ("", 0)
        self.beacon_address: tuple[str, int] | None = None
        self.counters: dict[str, int] = {
            "connections": 0,
            "refused_connections": 0,
            "bad_frames": 0,
            "beacon_send_errors": 0,
        }

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, bind TCP and UDP, start the reaper. Raises ``OSError`` on bind errors."""
        loop = asyncio.get_running_loop()
        self.store = RegistryStore(self.config.db_path)
        try:
            if self.config.beacon is not None:
                self._beacon_socket = _open_udp_socket(*self.config.beacon)
                bound = self._beacon_socket.getsockname()
                self.beacon_address = (bound[0], bound[1])
            advertised = self.config.beacon_advertise or (
                format_host_port(*self.beacon_address) if self.beacon_address else None
            )
            self.service = RegistryService(self.store, local_beacon_addr=advertised)
            host, port = self.config.listen
            self._tcp_server = await asyncio.start_server(
                self._serve_connection, host or None, port, reuse_address=True
            )
        except BaseException:
            await self.close()
            raise
        sockname = self._tcp_server.sockets[0].getsockname()
        self.registry_address = (sockname[0], sockname[1])
        if self._beacon_socket is not None:
            loop.add_reader(self._beacon_socket.fileno(), self._on_beacon_readable)
        self._reaper = asyncio.create_task(self._reap_periodically(), name="registry-reaper")
        _log.info("registry on %s, beacon on %s", self.registry_address, self.beacon_address)

    async def close(self) -> None:
        """Stop accepting, drop every connection, close the beacon socket and the store."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        if self._tcp_server is not None:
            self._tcp_server.close()
        for writer in list(self._connections):
            writer.close()
        if self._tcp_server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp_server.wait_closed(), 2.0)
            self._tcp_server = None
        if self._beacon_socket is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._beacon_socket.fileno())
            self._beacon_socket.close()
            self._beacon_socket = None
        if self.store is not None:
            self.store.close()
            self.store = None

    # -- registry TCP ----------------------------------------------------------------------

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        source_ip, source_port = (str(peer[0]), int(peer[1])) if peer else ("", 0)
        if len(self._connections) >= self.config.max_connections:
            self.counters["refused_connections"] += 1
            writer.close()
            return
        self._connections.add(writer)
        self.counters["connections"] += 1
        decoder = RegistryFrameDecoder()
        try:
            while True:
                data = await asyncio.wait_for(reader.read(READ_CHUNK_BYTES), self.config.idle_timeout_seconds)
                if not data:
                    break
                messages = decoder.feed(data)
                for message in messages:
                    writer.write(self._answer(message, source_ip, source_port))
                if messages:
                    await writer.drain()
        except MalformedFrame as exc:
            self.counters["bad_frames"] += 1
            _log.debug("registry: closing %s:%s: %s", source_ip, source_port, exc.reason)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            _log.debug("registry: connection %s:%s ended: %r", source_ip, source_port, exc)
        except Exception:
            _log.exception("registry: connection %s:%s failed", source_ip, source_port)
        finally:
            self._connections.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _answer(self, message: dict[str, object], source_ip: str, source_port: int) -> bytes:
        service = self.service
        if service is None:
            return encode_registry_message(error_response())
        response = service.handle(message, source_ip, source_port, self._wall_clock())
        try:
            return encode_registry_message(response)
        except (ValueError, TypeError):
            _log.exception("registry: response to %s not encodable", message.get("type"))
            return encode_registry_message(error_response())

    async def _reap_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.config.reap_interval_seconds)
            if self.service is None:
                continue
            try:
                self.service.reap(self._wall_clock())
            except Exception:
                _log.exception("registry: reaper failed")

    # -- beacon UDP ------------------------------------------------------------------------

    def _on_beacon_readable(self) -> None:
        sock = self._beacon_socket
        if sock is None:
            return
        for _ in range(MAX_DATAGRAMS_PER_WAKEUP):
            try:
                datagram, source = sock.recvfrom(MAX_DATAGRAM_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # e.g. ECONNREFUSED queued by an ICMP error for an earlier sendto.
                _log.debug("beacon: recvfrom: %r", exc)
                continue
            for payload, destination in self.beacon.handle(datagram, source, self._monotonic()):
                try:
                    sock.sendto(payload, destination)
                except OSError as exc:
                    self.counters["beacon_send_errors"] += 1
                    _log.debug("beacon: sendto %s: %r", destination, exc)


def _open_udp_socket(host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket bound to ``host:port`` with a large receive buffer."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BEACON_RECEIVE_BUFFER_BYTES)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def write_state_file(path: Path, registry: str, beacon: str, pid: int) -> None:
    """Atomically write ``{"registry": ..., "beacon": ..., "pid": ...}`` (mode 0600)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{pid}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"registry": registry, "beacon": beacon, "pid": pid}, handle)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def remove_state_file_if_ours(path: Path, pid: int) -> None:
    """Delete the state file on exit, unless another registry has already replaced it."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
