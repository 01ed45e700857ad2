# SPDX-License-Identifier: Apache-2.0
"""Sans-IO beacon: NAT discovery, hole-punch coordination and relay (``wire.md`` §9).

Where it sits: UDP datagram (driver) → ``decode_beacon`` → **BeaconService.handle** →
list of (datagram, destination) for the driver to ``sendto``.

Behaviour (a standalone beacon; no gossip peers):

- Discover ``[u32 node]``: remember node → observed source address (node 0 is a plain STUN
  query and is not remembered), reply DiscoverReply with that address.
- PunchRequest ``[u32 requester][u32 target]``: refresh the requester's address; if the target
  is known, send PunchCommand to **both** sides, each naming the other's address.
- Relay ``[u32 sender][u32 dest][inner]``: RelayDeliver ``[u32 sender][inner]`` to ``dest`` if
  known, else drop. The sender is not authenticated and never updates the table.
- Anything else (replies, Sync gossip from beacons we do not peer with, garbage) is dropped and
  counted in ``counters``; ``handle`` never raises.

Entries never expire (§9: the beacon sends nothing periodic and never expires entries), but the
table is bounded: beyond ``max_nodes`` the least recently refreshed entry is evicted, so spoofed
Discovers cannot grow it without limit.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

from pilotsock.errors import MalformedFrame
from pilotsock.wire.beacon_messages import (
    Discover,
    DiscoverReply,
    PunchCommand,
    PunchRequest,
    Relay,
    RelayDeliver,
    decode_beacon,
    encode_beacon,
)

Endpoint = tuple[str, int]
Outgoing = list[tuple[bytes, Endpoint]]

DEFAULT_MAX_NODES = 100_000


class _Entry(NamedTuple):
    endpoint: Endpoint
    seen_at: float


def _normalize(source: tuple[object, ...]) -> Endpoint:
    """Reduce a socket address (IPv6 sockets give 4-tuples) to ``(host, port)``."""
    host, port = source[0], source[1]
    if not isinstance(host, str) or not isinstance(port, int):
        raise MalformedFrame("beacon.bad_source")
    if host.startswith("::ffff:") and "." in host:
        host = host[len("::ffff:") :]  # dual-stack socket: report the IPv4 address
    return host, port


class BeaconService:
    """The beacon's state: node ID → last observed UDP endpoint.

    Args:
        max_nodes: bound on remembered nodes (least recently refreshed evicted first).

    After each ``handle`` the driver sends every returned datagram; nothing else is required
    (no timers).
    """

    def __init__(self, *, max_nodes: int = DEFAULT_MAX_NODES) -> None:
        if max_nodes <= 0:
            raise ValueError("max_nodes must be positive")
        self.max_nodes = max_nodes
        self._nodes: dict[int, _Entry] = {}
        self.counters: Counter[str] = Counter()

    def endpoint_of(self, node_id: int) -> Endpoint | None:
        entry = self._nodes.get(node_id)
        return None if entry is None else entry.endpoint

    @property
    def known_nodes(self) -> int:
        return len(self._nodes)

    def handle(self, datagram: bytes, source: tuple[object, ...], now: float) -> Outgoing:
        """Process one datagram from ``source``; return the datagrams to send. Never raises."""
        try:
            return self._dispatch(bytes(datagram), _normalize(source), now)
        except MalformedFrame as exc:
            return self._drop(exc.reason)
        except (ValueError, TypeError, IndexError):
            # An address the codec cannot encode (e.g. a non-IP host name).
            return self._drop("beacon.unencodable")

    def _drop(self, reason: str) -> Outgoing:
        self.counters[reason] += 1
        self.counters["dropped"] += 1
        return []

    def _dispatch(self, datagram: bytes, source: Endpoint, now: float) -> Outgoing:
        message = decode_beacon(datagram)
        if isinstance(message, Discover):
            return self._on_discover(message, source, now)
        if isinstance(message, PunchRequest):
            return self._on_punch_request(message, source, now)
        if isinstance(message, Relay):
            return self._on_relay(message)
        return self._drop(f"beacon.unexpected_{type(message).__name__.lower()}")

    def _remember(self, node_id: int, endpoint: Endpoint, now: float) -> None:
        self._nodes.pop(node_id, None)  # re-insert so dict order = refresh order
        self._nodes[node_id] = _Entry(endpoint, now)
        while len(self._nodes) > self.max_nodes:
            del self._nodes[next(iter(self._nodes))]
            self.counters["beacon.evicted"] += 1

    def _on_discover(self, message: Discover, source: Endpoint, now: float) -> Outgoing:
        reply = encode_beacon(DiscoverReply(*source))
        if message.node_id != 0:
            self._remember(message.node_id, source, now)
        self.counters["discover"] += 1
        return [(reply, source)]

    def _on_punch_request(self, message: PunchRequest, source: Endpoint, now: float) -> Outgoing:
        target = self._nodes.get(message.target)
        if message.requester != 0:
            self._remember(message.requester, source, now)
        if target is None or message.target == message.requester:
            return self._drop("beacon.punch_target_unknown")
        to_requester = encode_beacon(PunchCommand(*target.endpoint))
        to_target = encode_beacon(PunchCommand(*source))
        self.counters["punch"] += 1
        return [(to_requester, source), (to_target, target.endpoint)]

    def _on_relay(self, message: Relay) -> Outgoing:
        destination = self._nodes.get(message.destination)
        if destination is None:
            return self._drop("beacon.relay_destination_unknown")
        self.counters["relay"] += 1
        return [(encode_beacon(RelayDeliver(message.sender, message.inner)), destination.endpoint)]
