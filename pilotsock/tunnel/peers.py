# SPDX-License-Identifier: Apache-2.0
"""The peer table: who we have a session with, where they are, and what waits for a key.

Where it sits: ring 2. UDP endpoint -> ``on_key_exchange`` / ``open`` -> packets for the demux;
demux -> ``seal`` -> (frame, path) for the UDP endpoint. Registry lookups are requested as
events (``NeedIdentity``, ``NeedEndpoint``) and answered with ``on_identity`` / ``set_path``.

Rules (``wire.md`` §6–§8):
- Always PILA; a PILA is accepted only if its Ed25519 key equals the registry's copy (re-fetched
  once, rate-limited, when it differs) and the signature over ``b"auth" ‖ node ‖ X25519`` holds.
- A session is (re)derived only when there was none or the peer's X25519 key changed; we answer
  with our own PILA only then (never redundant PILAs: Go resets its send state on every KX).
- Before a key exists, packets are queued (64 per peer, drop oldest; 256 waiting peers) and never
  sent in plaintext. A PILS without a session triggers a recovery PILA (<= 1 per 60 s per peer);
  5 consecutive decrypt failures drop the session and re-handshake (rate-limited alike).
- Paths are reply-on-ingress: a peer's path is where its last *authenticated* frame came from.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Union

from pilotsock.config import TunnelConfig
from pilotsock.identity import verify_signature
from pilotsock.tunnel.keys import KeyAgreementError, TunnelKeyPair, derive_tunnel_key
from pilotsock.tunnel.session import OpenFailure, TunnelSession
from pilotsock.wire.tunnel_frames import (
    KeyExchange,
    SealedFrame,
    encode_authenticated_key_exchange,
    pila_signed_message,
)

Address = tuple[str, int]
MAX_UNVERIFIED_NODES = 256  # PILAs held / identity look-ups outstanding / recovery PILA timestamps
MAX_IDENTITIES = 4096


class PeerPath(NamedTuple):
    """Where frames to a peer go: directly to ``address``, or (``relay_to`` set) wrapped in a
    beacon Relay message for node ``relay_to`` and sent to the beacon at ``address``."""

    address: Address
    relay_to: int | None = None

    @property
    def relayed(self) -> bool:
        return self.relay_to is not None


class NeedIdentity(NamedTuple):
    """Look up ``node``'s Ed25519 key at the registry, then call ``on_identity``."""

    node: int


class NeedEndpoint(NamedTuple):
    """Resolve ``node``'s address at the registry, then call ``set_path`` (or ``unreachable``)."""

    node: int


class SessionReady(NamedTuple):
    node: int


class PeerUnreachable(NamedTuple):
    node: int


TunnelEvent = Union[NeedIdentity, NeedEndpoint, SessionReady, PeerUnreachable]


@dataclass
class Peer:
    node: int
    session: TunnelSession | None = None
    path: PeerPath | None = None
    endpoint_requested_at: float | None = None
    pending: deque[bytes] = field(default_factory=deque)
    last_kx_sent_at: float | None = None
    decrypt_failures: int = 0
    confirmed: bool = False  # an authentic PILS arrived in this session: the peer has our key


class PeerTable:
    """Sessions with every peer node. Outputs accumulate until the driver drains them."""

    def __init__(self, config: TunnelConfig, *, own_node: int, identity_public_key: bytes,
                 sign: Callable[[bytes], bytes], key_pair: TunnelKeyPair | None = None,
                 random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self.config = config
        self.own_node = own_node
        self.key_pair = key_pair or TunnelKeyPair()
        self._identity_public = identity_public_key
        self._sign = sign
        self._random_bytes = random_bytes
        self.peers: dict[int, Peer] = {}
        self._waiting_peers = 0
        self._datagrams: list[tuple[bytes, PeerPath]] = []
        self._events: list[TunnelEvent] = []
        self.counters: dict[str, int] = {}
        self._own_pila: bytes | None = None
        # State about nodes we have not authenticated lives only in these bounded tables, so
        # frames with random sender IDs cannot grow memory or flood the registry.
        self._identities: dict[int, bytes] = {}  # registry Ed25519 keys (LRU by insertion)
        self._held: dict[int, tuple[KeyExchange, PeerPath]] = {}  # PILAs waiting for a key
        self._identity_requested_at: dict[int, float] = {}
        self._recovery_sent_at: dict[int, float] = {}

    # -- outputs ----------------------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, PeerPath]]:
        out, self._datagrams = self._datagrams, []
        return out

    def pop_events(self) -> list[TunnelEvent]:
        events, self._events = self._events, []
        return events

    def _count(self, reason: str) -> None:
        self.counters[reason] = self.counters.get(reason, 0) + 1

    def own_key_exchange(self) -> bytes:
        """Our PILA frame (the same bytes for every peer)."""
        if self._own_pila is None:
            public = self.key_pair.public_key
            signature = self._sign(pila_signed_message(self.own_node, public))
            self._own_pila = encode_authenticated_key_exchange(
                self.own_node, public, self._identity_public, signature
            )
        return self._own_pila

    # -- queries ----------------------------------------------------------------------------

    def path_of(self, node: int) -> PeerPath | None:
        peer = self.peers.get(node)
        return peer.path if peer is not None else None

    def has_session(self, node: int) -> bool:
        peer = self.peers.get(node)
        return peer is not None and peer.session is not None and peer.path is not None

    def _peer(self, node: int) -> Peer:
        peer = self.peers.get(node)
        if peer is None:
            peer = self.peers[node] = Peer(node)
        return peer

    # -- sending ----------------------------------------------------------------------------

    def seal(self, node: int, packet: bytes | memoryview, now: float) -> tuple[bytes, PeerPath] | None:
        """Encrypt ``packet`` for ``node``. Returns (frame, path), or None if it was queued
        (or dropped) because no session exists yet; outputs/events then say what to do."""
        peer = self.peers.get(node)
        if peer is not None and peer.session is not None and peer.path is not None:
            if peer.session.exhausted:
                self._reset_session(peer)
            else:
                return peer.session.seal(packet), peer.path
        peer = self._peer(node)
        if not peer.pending:
            if self._waiting_peers >= self.config.pending_peers_max:
                self._count("tunnel.pending_peers_full")
                return None
            self._waiting_peers += 1
        if len(peer.pending) >= self.config.pending_packets_per_peer:
            peer.pending.popleft()
            self._count("tunnel.pending_dropped")
        peer.pending.append(bytes(packet))
        self._start_key_exchange(peer, now)
        return None

    def _request_identity(self, node: int, now: float) -> bool:
        """Ask the driver for ``node``'s registry key (bounded, at most once a second)."""
        requested_at = self._identity_requested_at.get(node)
        if requested_at is not None and now - requested_at < 1.0:
            return True
        if requested_at is None and len(self._identity_requested_at) >= MAX_UNVERIFIED_NODES:
            self._count("tunnel.identity_requests_full")
            return False
        self._identity_requested_at[node] = now
        self._events.append(NeedIdentity(node))
        return True

    def _start_key_exchange(self, peer: Peer, now: float) -> None:
        if peer.node not in self._identities:
            self._request_identity(peer.node, now)
        if peer.path is None:
            if peer.endpoint_requested_at is None:
                peer.endpoint_requested_at = now
                self._events.append(NeedEndpoint(peer.node))
            return
        if peer.last_kx_sent_at is None or now - peer.last_kx_sent_at >= self.config.key_exchange_retry_interval:
            peer.last_kx_sent_at = now
            self._datagrams.append((self.own_key_exchange(), peer.path))

    def set_path(self, node: int, path: PeerPath, now: float) -> None:
        """A registry ``resolve`` (or configuration) says where ``node`` is."""
        peer = self._peer(node)
        peer.endpoint_requested_at = None
        if peer.path is None or peer.session is None:
            peer.path = path
        if peer.pending and peer.session is None:
            peer.last_kx_sent_at = None
            self._start_key_exchange(peer, now)

    def endpoint_failed(self, node: int) -> None:
        """The registry could not resolve ``node``: drop what waited for it."""
        peer = self.peers.get(node)
        if peer is None:
            return
        peer.endpoint_requested_at = None
        if peer.pending:
            peer.pending.clear()
            self._waiting_peers -= 1
        self._events.append(PeerUnreachable(node))

    def retry_key_exchange(self, node: int, now: float) -> None:
        """Called by the driver on SYN retransmission when no session exists yet."""
        peer = self.peers.get(node)
        if peer is not None and peer.session is None:
            self._start_key_exchange(peer, now)

    # -- receiving --------------------------------------------------------------------------

    def on_identity(self, node: int, identity_key: bytes | None, now: float) -> None:
        """Answer to ``NeedIdentity``: the registry's Ed25519 key for ``node`` (None: unknown)."""
        self._identity_requested_at.pop(node, None)
        held = self._held.pop(node, None)
        if identity_key is None:
            self._count("tunnel.identity_unknown")
            return
        self._identities.pop(node, None)
        self._identities[node] = identity_key
        if len(self._identities) > MAX_IDENTITIES:
            oldest = next(iter(self._identities))
            if oldest not in self.peers:
                del self._identities[oldest]
        if held is not None:
            self.on_key_exchange(held[0], held[1], now, refetched=True)

    def on_key_exchange(self, kx: KeyExchange, source: PeerPath, now: float, *, refetched: bool = False) -> None:
        """Process a PILA (or PILK) frame that arrived from ``source``."""
        if kx.sender == self.own_node or kx.sender == 0:
            self._count("tunnel.kx_bad_sender")
            return
        if not kx.authenticated:
            # PILK: never accepted from registered nodes (Go rule); answer with our PILA.
            self._count("tunnel.pilk_rejected")
            self._datagrams.append((self.own_key_exchange(), source))
            return
        known_key = self._identities.get(kx.sender)
        if known_key is None or (known_key != kx.identity_key and not refetched):
            # Unknown (or changed) identity: hold the newest PILA and ask the registry once.
            if kx.sender in self._held or len(self._held) < MAX_UNVERIFIED_NODES:
                if self._request_identity(kx.sender, now):
                    self._held[kx.sender] = (kx, source)
            else:
                self._count("tunnel.kx_held_full")
            return
        if known_key != kx.identity_key:
            self._count("tunnel.kx_key_mismatch")
            return
        if not verify_signature(kx.identity_key, kx.signature, pila_signed_message(kx.sender, kx.x25519_public)):
            self._count("tunnel.kx_bad_signature")
            return
        peer = self._peer(kx.sender)
        changed = peer.session is None or peer.session.peer_x25519 != kx.x25519_public
        if changed:
            try:
                shared = self.key_pair.shared_secret(kx.x25519_public)
            except KeyAgreementError:
                self._count("tunnel.kx_bad_key")
                return
            peer.session = TunnelSession(
                derive_tunnel_key(shared), own_node=self.own_node, peer_node=peer.node,
                peer_x25519=kx.x25519_public, random_bytes=self._random_bytes,
                replay_window=self.config.replay_window,
            )
            peer.decrypt_failures = 0
            peer.confirmed = False
        if not source.relayed or peer.path is None:
            peer.path = source
        # Reply when the session is new, or while the peer has not shown it holds our key (our
        # earlier reply may have been lost); rate-limited so a same-key PILA never loops.
        if changed or (not peer.confirmed and (
                peer.last_kx_sent_at is None
                or now - peer.last_kx_sent_at >= self.config.key_exchange_retry_interval)):
            peer.last_kx_sent_at = now
            self._datagrams.append((self.own_key_exchange(), peer.path))
        if changed:
            self._events.append(SessionReady(peer.node))
        self._flush(peer)

    def _flush(self, peer: Peer) -> None:
        if not peer.pending or peer.session is None or peer.path is None:
            return
        self._waiting_peers -= 1
        while peer.pending:
            self._datagrams.append((peer.session.seal(peer.pending.popleft()), peer.path))

    def open(self, frame: SealedFrame, source: PeerPath, now: float) -> bytes | None:
        """Decrypt a PILS frame; returns the packet bytes or None (dropped and counted)."""
        peer = self.peers.get(frame.sender)
        if peer is None or peer.session is None:
            self._count("tunnel.no_session")
            self._recovery_key_exchange(frame.sender, source, now)
            return None
        try:
            plaintext = peer.session.open(frame)
        except OpenFailure as failure:
            self._count(failure.reason)
            if failure.reason == "tunnel.decrypt":
                peer.decrypt_failures += 1
                if peer.decrypt_failures >= self.config.decrypt_failures_before_rekey:
                    self._reset_session(peer)
                    self._recovery_key_exchange(peer.node, source, now)
            return None
        peer.decrypt_failures = 0
        peer.confirmed = True
        if not source.relayed:
            peer.path = source
        return plaintext

    def _recovery_key_exchange(self, node: int, source: PeerPath, now: float) -> None:
        sent_at = self._recovery_sent_at.get(node)
        if sent_at is not None and now - sent_at < self.config.recovery_kx_interval:
            return
        if sent_at is None and len(self._recovery_sent_at) >= MAX_UNVERIFIED_NODES:
            expired = [n for n, t in self._recovery_sent_at.items() if now - t >= self.config.recovery_kx_interval]
            for n in expired:
                del self._recovery_sent_at[n]
            if len(self._recovery_sent_at) >= MAX_UNVERIFIED_NODES:
                self._count("tunnel.recovery_full")
                return
        self._recovery_sent_at[node] = now
        self._datagrams.append((self.own_key_exchange(), source))

    def _reset_session(self, peer: Peer) -> None:
        peer.session = None
        peer.decrypt_failures = 0

    def forget(self, node: int) -> None:
        peer = self.peers.pop(node, None)
        if peer is not None and peer.pending:
            self._waiting_peers -= 1
