# SPDX-License-Identifier: Apache-2.0
"""Composition root: builds the daemon's parts from :class:`DaemonConfig` and runs them.

Start order (``wire.md`` §10.4, adapted): home lock -> identity -> UDP socket -> registry (the
per-user local one if none is configured) -> beacon discovery -> register -> beacon keepalive ->
visibility -> stack + local API (+ echo on 7) -> state file -> heartbeat.
Shutdown: FIN to established streams, signed ``deregister``, close sockets, remove the state file.

Everything lives on one asyncio loop in one thread; the hot path uses ``add_reader`` callbacks.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import os
import signal
from typing import Any, Hashable

import pilotsock
from pilotsock.addresses import Addr
from pilotsock.config import DaemonConfig, local_registry_dir
from pilotsock.daemon.home import HomeLock, ensure_private_dir, write_json_atomic
from pilotsock.daemon.local_api import LocalApiServer
from pilotsock.daemon.registry_link import RegistryLink
from pilotsock.daemon.scheduler import Scheduler
from pilotsock.daemon.stack import NodeStack
from pilotsock.daemon.udp_endpoint import Address, UdpEndpoint, format_host_port, parse_host_port
from pilotsock.errors import ErrorCode, MalformedFrame
from pilotsock.identity import Identity
from pilotsock.registry.client import RegistryClient
from pilotsock.transport.states import State
from pilotsock.tunnel.peers import NeedEndpoint, NeedIdentity, PeerPath, PeerTable, PeerUnreachable
from pilotsock.wire.beacon_messages import (
    Discover,
    DiscoverReply,
    PunchCommand,
    Relay,
    RelayDeliver,
    decode_beacon,
    encode_beacon,
)
from pilotsock.wire.tunnel_frames import (
    MAGIC_PILA,
    MAGIC_PILK,
    MAGIC_PILP,
    MAGIC_PILS,
    MAGIC_PILT,
    decode_key_exchange,
    decode_sealed,
    encode_punch,
)

log = logging.getLogger("pilotsock.daemon")

PUNCH_REPEATS = 3


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.loop = asyncio.get_running_loop()
        self.identity: Identity | None = None
        self.udp: UdpEndpoint | None = None
        self.registry_address: str | None = None
        self.beacon: Address | None = None
        self.endpoint: str | None = None
        self.link: RegistryLink | None = None
        self.peers: PeerTable | None = None
        self.stack: NodeStack | None = None
        self.scheduler: Scheduler | None = None
        self.local_api: LocalApiServer | None = None
        self.own: Addr | None = None
        self.counters: dict[str, int] = {}
        self._lock = HomeLock(config.lock_path)
        self._stopping = asyncio.Event()
        self._discovery: asyncio.Future[Address] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def _count(self, reason: str) -> None:
        self.counters[reason] = self.counters.get(reason, 0) + 1

    def _spawn(self, coroutine: Any) -> None:
        task = self.loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- start ------------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        ensure_private_dir(config.home)
        self._lock.acquire()
        self.identity = Identity.load_or_create(config.identity_path)
        self.udp = UdpEndpoint(self.loop, parse_host_port(config.listen), buffer_bytes=config.udp_buffer_bytes,
                               on_datagram=self._on_datagram, on_batch_end=self._on_batch_end)
        log.info("tunnel socket on %s (rcvbuf %d, sndbuf %d)", format_host_port(self.udp.local_address),
                 self.udp.receive_buffer_bytes, self.udp.send_buffer_bytes)
        registry, beacon = config.registry, config.beacon
        if registry is None:
            from pilotsock.registry.local import ensure_local_registry

            registry, local_beacon = await self.loop.run_in_executor(
                None, ensure_local_registry, local_registry_dir())
            beacon = beacon or local_beacon
        self.registry_address = registry
        assert registry is not None
        host, port = parse_host_port(registry)
        client = RegistryClient(host, port)
        self.link = RegistryLink(client, self.identity, config)
        self.beacon = parse_host_port(beacon) if beacon else await self.link.beacon_address()
        self.endpoint = config.endpoint or await self._discover_endpoint()
        await self.link.register(self.endpoint)
        assert self.link.node_id is not None
        self.own = Addr(0, self.link.node_id)
        log.info("registered as node %d (%s) at %s", self.own.node, self.own, registry)
        self.link.on_heartbeat = self._beacon_keepalive
        self._beacon_keepalive()
        self.peers = PeerTable(config.tunnel, own_node=self.own.node, identity_public_key=self.identity.public_key,
                               sign=self.identity.sign)
        self.scheduler = Scheduler(self.loop, self._on_timer)
        self.stack = NodeStack(self.loop, config, own=self.own, peers=self.peers, send_frame=self._send_frame,
                               schedule=self.scheduler.schedule)
        self.stack.on_tunnel_activity = self._service_tunnel
        self.stack.hold_frames, self.stack.release_frames = self.udp.hold, self.udp.release
        self.local_api = LocalApiServer(self.loop, config.control_socket_path, self.stack, info=self.info,
                                        resolve_hostname=self._resolve_hostname, stats=self.stats)
        if config.echo:
            self.local_api.start_echo()
        write_json_atomic(config.state_path, self.info())
        self._spawn(self.link.heartbeat_forever())

    def _on_timer(self, key: Hashable, now: float) -> None:
        self._stack().on_timer(key, now)

    def _stack(self) -> NodeStack:
        assert self.stack is not None
        return self.stack

    async def _discover_endpoint(self) -> str:
        """STUN-like discovery through the beacon, from the tunnel socket itself."""
        assert self.udp is not None
        local = self.udp.local_address
        if self.beacon is not None:
            self._discovery = self.loop.create_future()
            self.udp.send(encode_beacon(Discover(0)), self.beacon)
            try:
                observed = await asyncio.wait_for(self._discovery, self.config.discovery_timeout)
                if not ipaddress.ip_address(observed[0]).is_unspecified:
                    return format_host_port(observed)
            except asyncio.TimeoutError:
                log.info("beacon discovery timed out; using the local address")
            finally:
                self._discovery = None
        host = local[0]
        if ipaddress.ip_address(host).is_unspecified:
            host = "127.0.0.1" if ":" not in host else "::1"
        return format_host_port((host, local[1]))

    def _beacon_keepalive(self) -> None:
        if self.beacon is not None and self.udp is not None and self.link is not None and self.link.node_id:
            self.udp.send(encode_beacon(Discover(self.link.node_id)), self.beacon)

    # -- datagrams --------------------------------------------------------------------------

    def _on_datagram(self, view: memoryview, source: Address, now: float, relayed_from: int | None = None) -> None:
        if not len(view):
            self._count("udp.empty")
            return
        if view[0] < 0x10:
            if relayed_from is None:
                self._on_beacon(view, source, now)
            else:
                self._count("beacon.nested")
            return
        peers, stack = self.peers, self.stack
        if peers is None or stack is None:
            return
        path = PeerPath(source, relayed_from)
        magic = bytes(view[:4])
        try:
            if magic == MAGIC_PILS:
                frame = decode_sealed(view)
                plaintext = peers.open(frame, path, now)
                if plaintext is not None:
                    stack.on_tunnel_packet(plaintext, frame.sender, now)
            elif magic == MAGIC_PILA or magic == MAGIC_PILK:
                peers.on_key_exchange(decode_key_exchange(view), path, now)
                stack.request_flush()
            elif magic == MAGIC_PILP:
                self._count("tunnel.punch")
            elif magic == MAGIC_PILT:
                # Plaintext is never accepted: the opt-in plaintext mode is not implemented.
                self._count("tunnel.plaintext_rejected")
            else:
                self._count("tunnel.unknown_magic")
        except MalformedFrame as exc:
            self._count(exc.reason)

    def _on_beacon(self, view: memoryview, source: Address, now: float) -> None:
        try:
            message = decode_beacon(view)
        except MalformedFrame as exc:
            self._count(exc.reason)
            return
        if self.beacon is None or source[:2] != self.beacon[:2]:
            self._count("beacon.unexpected_source")
            return
        if isinstance(message, DiscoverReply):
            if self._discovery is not None and not self._discovery.done():
                self._discovery.set_result((message.host, message.port))
        elif isinstance(message, PunchCommand):
            if self.udp is not None and self.own is not None:
                for _ in range(PUNCH_REPEATS):
                    self.udp.send(encode_punch(self.own.node), (message.host, message.port))
        elif isinstance(message, RelayDeliver):
            self._on_datagram(memoryview(message.inner), source, now, relayed_from=message.sender)
        else:
            self._count("beacon.unexpected_type")

    def _on_batch_end(self, now: float) -> None:
        if self.stack is not None:
            self.stack.flush(now)

    def _send_frame(self, frame: bytes, path: PeerPath) -> None:
        assert self.udp is not None
        if path.relay_to is not None and self.own is not None:
            self.udp.send(encode_beacon(Relay(self.own.node, path.relay_to, frame)), path.address)
        else:
            self.udp.send(frame, path.address)

    def _service_tunnel(self, now: float) -> None:
        """Send what the peer table produced and start the registry look-ups it asked for."""
        peers = self.peers
        if peers is None:
            return
        for frame, path in peers.datagrams_to_send():
            self._send_frame(frame, path)
        for event in peers.pop_events():
            if isinstance(event, NeedIdentity):
                self._spawn(self._fetch_identity(event.node))
            elif isinstance(event, NeedEndpoint):
                self._spawn(self._fetch_endpoint(event.node))
            elif isinstance(event, PeerUnreachable):
                self._stack().fail_dials_to(event.node, ErrorCode.UNREACHABLE, now)

    async def _fetch_identity(self, node: int) -> None:
        assert self.link is not None and self.peers is not None
        key = await self.link.lookup_identity(node)
        now = self.loop.time()
        self.peers.on_identity(node, key, now)
        if key is None and not self.peers.has_session(node):
            self.peers.endpoint_failed(node)
        self._stack().flush(now)

    async def _fetch_endpoint(self, node: int) -> None:
        assert self.link is not None and self.peers is not None
        address = await self.link.resolve_endpoint(node)
        now = self.loop.time()
        if address is None:
            self.peers.endpoint_failed(node)
        else:
            self.peers.set_path(node, PeerPath(address), now)
        self._stack().flush(now)

    async def _resolve_hostname(self, name: str) -> Addr | None:
        assert self.link is not None
        node = await self.link.resolve_hostname(name)
        return None if node is None else Addr(0, node)

    # -- introspection ----------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        own = self.own
        return {
            "address": str(own) if own else None,
            "alias": own.alias() if own else None,
            "node_id": own.node if own else None,
            "network_id": own.network if own else None,
            "hostname": self.link.hostname if self.link else None,
            "registry": self.registry_address,
            "beacon": format_host_port(self.beacon) if self.beacon else None,
            "endpoint": self.endpoint,
            "listen": format_host_port(self.udp.local_address) if self.udp else None,
            "home": str(self.config.home),
            "public": self.config.public,
            "encrypt": self.config.tunnel.encrypt,
            "pid": os.getpid(),
            "version": pilotsock.__version__,
            "control_socket": str(self.config.control_socket_path),
        }

    def stats(self) -> dict[str, Any]:
        counters: dict[str, int] = dict(self.counters)
        for part in (self.udp, self.stack, self.peers, self.local_api, self.link):
            if part is not None:
                counters.update(part.counters)
        stack = self.stack
        if stack is not None:  # closed streams are summed at close; add the live ones
            for endpoint in stack.streams.values():
                endpoint.conn.stats.add_to(counters)
        states: collections.Counter[str] = collections.Counter()
        if stack is not None:
            states.update(endpoint.conn.state.value for endpoint in stack.streams.values())
            if stack.time_wait:
                states[State.TIME_WAIT.value] += len(stack.time_wait)
        return {
            "counters": counters,
            "streams": sum(states.values()),
            "stream_states": dict(states),
            "streams_active": stack.active_connections if stack else 0,
            "streams_orphaned": sum(ep.conn.orphaned for ep in stack.streams.values()) if stack else 0,
            "listeners": sorted(stack.listeners) if stack else [],
            "peers": sorted(n for n in self.peers.peers if self.peers.has_session(n)) if self.peers else [],
            "timers": len(self.scheduler) if self.scheduler else 0,
        }

    # -- run / stop -------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stopping.set()

    async def run_until_stopped(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                self.loop.add_signal_handler(signum, self.request_stop)
            except (NotImplementedError, RuntimeError):
                pass
        await self._stopping.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        log.info("shutting down")
        if self.stack is not None:
            self.stack.shutdown(self.loop.time())
        if self.local_api is not None:
            self.local_api.close()
        for task in list(self._tasks):
            task.cancel()
        if self.link is not None:
            await self.link.deregister()
            await self.link.client.close()
        if self.scheduler is not None:
            self.scheduler.close()
        if self.udp is not None:
            self.udp.close()
        try:
            self.config.state_path.unlink()
        except OSError:
            pass
        self._lock.release()
