# SPDX-License-Identifier: Apache-2.0
"""The daemon's side of the registry: register, heartbeat, re-register, look up peers.

Where it sits: ring 3, over :class:`pilotsock.registry.client.RegistryClient` (``wire.md`` §10).
Liveness (§10.4): heartbeat every 30 s; after 3 consecutive failures re-register with the same
key (same node ID) and restore visibility and hostname. Every successful heartbeat is followed by
the beacon keepalive (``0x01 ‖ node``) from the tunnel socket, done by the caller's hook.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from typing import Any, Callable

from pilotsock.config import DaemonConfig
from pilotsock.daemon.udp_endpoint import Address, parse_host_port
from pilotsock.identity import Identity
from pilotsock.registry.client import RegistryClient, RegistryError

log = logging.getLogger("pilotsock.daemon.registry")

REGISTER_BACKOFF_MAX = 10.0


class RegistryLink:
    def __init__(self, client: RegistryClient, identity: Identity, config: DaemonConfig) -> None:
        self.client = client
        self.identity = identity
        self.config = config
        self.node_id: int | None = None
        self.address: str | None = None
        self.hostname: str | None = None
        self.listen_addr: str | None = None
        self.heartbeat_failures = 0
        self.on_heartbeat: Callable[[], None] = lambda: None
        self.counters = {"registry.heartbeat_ok": 0, "registry.heartbeat_failed": 0, "registry.reregistered": 0}

    async def register(self, listen_addr: str) -> dict[str, Any]:
        """Register (retrying with back-off until it works) and apply visibility/hostname."""
        self.listen_addr = listen_addr
        delay = 0.5
        while True:
            try:
                response = await self.client.register(self.identity, listen_addr, hostname=self.config.hostname)
                break
            except (RegistryError, OSError) as exc:
                log.warning("registration failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(REGISTER_BACKOFF_MAX, delay * 2)
        new_id = int(response["node_id"])
        if self.node_id is not None and new_id != self.node_id:
            log.error("registry gave a new node ID %d (was %d)", new_id, self.node_id)
        self.node_id = new_id
        self.address = response.get("address")
        self.hostname = response.get("hostname") or None
        if response.get("hostname_error"):
            log.warning("hostname rejected by the registry: %s", response["hostname_error"])
        if self.config.public:
            try:
                await self.client.set_visibility(self.identity, new_id, True)
            except (RegistryError, OSError) as exc:
                log.warning("set_visibility failed: %s", exc)
        return response

    async def heartbeat_forever(self) -> None:
        interval = self.config.heartbeat_interval
        while True:
            await asyncio.sleep(interval)
            await self.heartbeat_once()

    async def heartbeat_once(self) -> None:
        assert self.node_id is not None
        # Bounded: the client's reconnect back-off alone could hold one heartbeat for ~15 s.
        timeout = min(10.0, max(1.0, self.config.heartbeat_interval))
        try:
            await asyncio.wait_for(self.client.heartbeat(self.identity, self.node_id), timeout)
        except (RegistryError, OSError, asyncio.TimeoutError) as exc:
            self.heartbeat_failures += 1
            self.counters["registry.heartbeat_failed"] += 1
            log.warning("heartbeat failed (%d in a row): %s", self.heartbeat_failures, exc)
            if self.heartbeat_failures >= self.config.heartbeat_failures_before_reregister and self.listen_addr:
                await self.register(self.listen_addr)
                self.counters["registry.reregistered"] += 1
                self.heartbeat_failures = 0
                self.on_heartbeat()
            return
        self.heartbeat_failures = 0
        self.counters["registry.heartbeat_ok"] += 1
        self.on_heartbeat()

    async def lookup_identity(self, node: int) -> bytes | None:
        try:
            response = await self.client.lookup(node)
            key = base64.b64decode(response["public_key"], validate=True)
        except (RegistryError, OSError, KeyError, TypeError, ValueError, binascii.Error) as exc:
            log.info("lookup of node %d failed: %s", node, exc)
            return None
        return key if len(key) == 32 else None

    async def resolve_endpoint(self, node: int) -> Address | None:
        assert self.node_id is not None
        try:
            response = await self.client.resolve(self.identity, self.node_id, node)
            return parse_host_port(str(response["real_addr"]))
        except (RegistryError, OSError, KeyError, ValueError) as exc:
            log.info("resolve of node %d failed: %s", node, exc)
            return None

    async def resolve_hostname(self, name: str) -> int | None:
        try:
            response = await self.client.resolve_hostname(name)
            return int(response["node_id"])
        except (RegistryError, OSError, KeyError, TypeError, ValueError):
            return None

    async def beacon_address(self) -> Address | None:
        try:
            response = await self.client.beacon_list()
        except (RegistryError, OSError):
            return None
        for beacon in response.get("beacons") or []:
            try:
                return parse_host_port(str(beacon["addr"]))
            except (KeyError, TypeError, ValueError):
                continue
        return None

    async def deregister(self, timeout: float = 1.0) -> None:
        if self.node_id is None:
            return
        try:
            await asyncio.wait_for(self.client.deregister(self.identity, self.node_id), timeout)
        except (RegistryError, OSError, asyncio.TimeoutError) as exc:
            log.info("deregister failed: %s", exc)
