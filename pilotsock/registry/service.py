# SPDX-License-Identifier: Apache-2.0
"""Sans-IO registry request handler: one JSON request in, one JSON response out (``wire.md`` §10).

Where it sits: TCP frame (driver) → ``decode_registry_body`` → **RegistryService.handle** →
``RegistryStore`` (SQLite) → response dict → ``encode_registry_message`` (driver).

Rules implemented here:

- §10.1: every failure, whatever its cause, is answered with exactly
  ``{"type": "error", "error": "request failed"}``; the reason goes to the debug log only.
- §10.2: every signed request is checked against the key on file with the exact challenge text.
- §10.3: the message set of a single Go-snapshot registry (backbone network 0 only; custom
  networks, network policies and replication always fail).
- §10.4: register rules (same key → same ID, owner reclaim, sequential never-reused IDs),
  ``real_addr`` from the TCP source IP, the register rate limit, reaping after 180 s.
- §10.5: privacy — ``lookup`` hides ``real_addr`` of private nodes; ``resolve`` of a private node
  needs a trust pair (the backbone is the only network, so "shared network" never applies).
- §14: hostname and tag syntax.

Every request runs inside one store transaction, so a failed request leaves no partial change.
Time is always the caller's ``now`` (unix seconds); nothing here reads a clock or does I/O
besides the injected store.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

from pilotsock.addresses import format_address
from pilotsock.identity import verify_signature_b64
from pilotsock.registry.rules import (
    RegisterRateLimiter,
    decode_public_key,
    field_bool,
    field_int,
    field_str,
    field_u32,
    hostname_problem,
    normalize_tags,
    real_address,
)
from pilotsock.registry.store import NodeRecord, RegistryStore
from pilotsock.wire.registry_messages import (
    GENERIC_ERROR,
    challenge_node,
    challenge_pair,
    challenge_resolve,
)

_log = logging.getLogger(__name__)

BACKBONE_NETWORK = 0
REAP_AFTER_SECONDS = 180.0  # §10.4: "not seen for 3 min"
HANDSHAKE_INBOX_LIMIT = 100  # §10.3: request_handshake fails when the target has 100 pending
BEACON_TTL_SECONDS = 60.0  # §10.3: beacon_register entries live 60 s
# Not in the spec: bounds what one request can store. A justification must fit the single
# ≤ 4096-byte segment of the direct handshake (§11), so 8 KiB is generous.
MAX_JUSTIFICATION_CHARS = 8192
MAX_BEACON_ADDR_CHARS = 255
LOCAL_BEACON_ID = 1


def error_response() -> dict[str, Any]:
    """The only failure response the registry ever sends (§10.1)."""
    return {"type": "error", "error": GENERIC_ERROR}


class RequestRefused(Exception):
    """Internal: the request fails. ``reason`` is logged at debug level, never sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Request(NamedTuple):
    message: dict[str, Any]
    source_ip: str
    source_port: int
    now: float


_Handler = Callable[[_Request], dict[str, Any]]


class RegistryService:
    """The registry's request handler.

    Args:
        store: the state (``RegistryStore``); the service owns no other persistent state.
        local_beacon_addr: ``host:port`` of a beacon running next to this registry; listed by
            ``beacon_list`` as beacon ``LOCAL_BEACON_ID`` so daemons find it from the registry.
        reap_after_seconds: liveness window (default 180 s, §10.4).
        rate_limiter: the ``register`` limiter (default: 10 per source IP per minute).

    Call ``handle`` for each decoded request and send back what it returns; call ``reap(now)``
    periodically (every 60 s in the Go registry).
    """

    def __init__(
        self,
        store: RegistryStore,
        *,
        local_beacon_addr: str | None = None,
        reap_after_seconds: float = REAP_AFTER_SECONDS,
        rate_limiter: RegisterRateLimiter | None = None,
    ) -> None:
        self.store = store
        self.local_beacon_addr = local_beacon_addr
        self.reap_after_seconds = reap_after_seconds
        self.rate_limiter = rate_limiter if rate_limiter is not None else RegisterRateLimiter()
        self._handlers: dict[str, _Handler] = {
            "register": self._on_register,
            "lookup": self._on_lookup,
            "resolve": self._on_resolve,
            "resolve_hostname": self._on_resolve_hostname,
            "set_hostname": self._on_set_hostname,
            "set_visibility": self._on_set_visibility,
            "set_tags": self._on_set_tags,
            "set_task_exec": self._on_set_task_exec,
            "heartbeat": self._on_heartbeat,
            "deregister": self._on_deregister,
            "rotate_key": self._on_rotate_key,
            "update_polo_score": self._on_polo_score,
            "set_polo_score": self._on_polo_score,
            "get_polo_score": self._on_polo_score,
            "list_networks": self._on_list_networks,
            "beacon_register": self._on_beacon_register,
            "beacon_list": self._on_beacon_list,
            "report_trust": self._on_report_trust,
            "revoke_trust": self._on_revoke_trust,
            "request_handshake": self._on_request_handshake,
            "poll_handshakes": self._on_poll_handshakes,
            "respond_handshake": self._on_respond_handshake,
            "punch": self._on_punch,
        }
        # list_nodes refuses network 0 and no other network exists; custom networks, network
        # policy (Go 1.18 asks, tolerates failure) and replication are not offered (§10.3).
        self.always_refused = frozenset(
            {
                "list_nodes",
                "create_network",
                "join_network",
                "leave_network",
                "get_network_policy",
                "subscribe_replication",
            }
        )

    # -- entry points ----------------------------------------------------------------------

    def handle(self, message: dict[str, Any], source_ip: str, source_port: int, now: float) -> dict[str, Any]:
        """Answer one request.

        Args:
            message: the decoded JSON object (must have a string ``type``).
            source_ip / source_port: the TCP peer of the registry connection.
            now: unix seconds.

        Returns:
            The response object; ``error_response()`` for any failure. Never raises.
        """
        kind = message.get("type") if isinstance(message, dict) else None
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            _log.debug("registry: refused %r from %s (unknown or unsupported type)", kind, source_ip)
            return error_response()
        try:
            with self.store.transaction():
                return handler(_Request(message, source_ip, source_port, now))
        except RequestRefused as exc:
            _log.debug("registry: refused %s from %s: %s", kind, source_ip, exc.reason)
        except Exception:
            _log.exception("registry: internal error handling %s", kind)
        return error_response()

    def reap(self, now: float) -> list[int]:
        """Reap nodes not seen for more than ``reap_after_seconds``; expire beacon entries.

        Reaped nodes leave the backbone and lose their hostname; their ID, key index entry,
        trust pairs and handshake inboxes stay (§10.4). Returns the reaped node IDs.
        """
        with self.store.transaction():
            reaped = self.store.reap_nodes_seen_before(now - self.reap_after_seconds)
            self.store.expire_beacons(now)
        self.rate_limiter.cleanup(now)
        if reaped:
            _log.info("registry: reaped %d node(s): %s", len(reaped), reaped)
        return reaped

    # -- helpers ---------------------------------------------------------------------------

    def _alive(self, node_id: int, role: str) -> NodeRecord:
        record = self.store.get_alive_node(node_id) if node_id else None
        if record is None:
            raise RequestRefused(f"{role} node {node_id} is not registered")
        return record

    def _signed_by(self, request: _Request, node_id: int, challenge: bytes) -> NodeRecord:
        """The alive node ``node_id`` whose key signed ``challenge`` in ``signature`` (§10.2)."""
        record = self._alive(node_id, "signing")
        signature = request.message.get("signature")
        if not isinstance(signature, str) or not verify_signature_b64(
            record.public_key, signature, challenge
        ):
            raise RequestRefused(f"bad signature for {challenge.decode()!r}")
        return record

    @staticmethod
    def _address(node_id: int) -> str:
        return format_address(BACKBONE_NETWORK, node_id)

    # -- registration and liveness (§10.4) --------------------------------------------------

    def _on_register(self, request: _Request) -> dict[str, Any]:
        message, now = request.message, request.now
        raw_key = decode_public_key(message.get("public_key"))
        if raw_key is None:
            raise RequestRefused("register needs a b64 32-byte public_key")
        key = base64.b64encode(raw_key).decode()
        owner = field_str(message, "owner")
        known_id = self.store.node_id_for_key(key)
        if known_id is None and not self.rate_limiter.allow(request.source_ip, now):
            raise RequestRefused("register rate limit")
        endpoint = real_address(message.get("listen_addr"), request.source_ip, request.source_port)

        record = self._registration_target(key, owner, known_id)
        record.real_addr = endpoint
        record.last_seen = now
        if owner and not record.owner and self._owner_is_free(owner, record.node_id):
            record.owner = owner
        self.store.index_key(key, record.node_id)

        response: dict[str, Any] = {
            "type": "register_ok",
            "node_id": record.node_id,
            "network_id": BACKBONE_NETWORK,
            "address": self._address(record.node_id),
            "public_key": key,
        }
        hostname = message.get("hostname")
        if isinstance(hostname, str) and hostname:
            problem = hostname_problem(hostname)
            if problem is not None:
                response["hostname_error"] = problem
            elif self.store.node_id_for_hostname(hostname) in (None, record.node_id):
                record.hostname = hostname
            # A name held by another node is skipped silently (§10.4).
        self.store.save_node(record)
        if record.hostname:
            response["hostname"] = record.hostname
        return response

    def _registration_target(self, key: str, owner: str, known_id: int | None) -> NodeRecord:
        """Apply the §10.4 register rules in order and return the (unsaved) node record."""
        if known_id is not None:
            existing = self.store.get_node(known_id)
            if existing is not None and existing.alive and existing.public_key == key:
                return existing  # rule 1: known key, alive → same node, endpoint refreshed
            # rule 2: known key, gone → recreate with the same ID in the default state
            previous_owner = existing.owner if existing is not None else ""
            return NodeRecord(node_id=known_id, public_key=key, owner=previous_owner)
        if owner:
            owner_id = self.store.node_id_for_owner(owner)
            if owner_id is not None:
                # rule 3: unknown key, known owner → the key is replaced (alive) or the ID is
                # reclaimed (gone). The old key no longer names this node.
                claimed = self.store.get_node(owner_id)
                if claimed is not None:
                    self.store.unindex_key(claimed.public_key)
                    if claimed.alive:
                        claimed.public_key = key
                        return claimed
                return NodeRecord(node_id=owner_id, public_key=key, owner=owner)
        # rule 4: a new node
        return NodeRecord(node_id=self.store.allocate_node_id(), public_key=key)

    def _owner_is_free(self, owner: str, node_id: int) -> bool:
        return self.store.node_id_for_owner(owner) in (None, node_id)

    def _on_heartbeat(self, request: _Request) -> dict[str, Any]:
        node_id = field_u32(request.message, "node_id")
        record = self._signed_by(request, node_id, challenge_node("heartbeat", node_id))
        record.last_seen = request.now
        self.store.save_node(record)
        return {"type": "heartbeat_ok", "time": int(request.now)}

    def _on_deregister(self, request: _Request) -> dict[str, Any]:
        node_id = field_u32(request.message, "node_id")
        if self.store.get_alive_node(node_id) is None:
            return {"type": "deregister_ok"}  # unknown node: success, no signature needed
        record = self._signed_by(request, node_id, challenge_node("deregister", node_id))
        record.alive = False
        record.hostname = None
        self.store.save_node(record)
        return {"type": "deregister_ok"}

    def _on_rotate_key(self, request: _Request) -> dict[str, Any]:
        node_id = field_u32(request.message, "node_id")
        record = self._signed_by(request, node_id, challenge_node("rotate", node_id))
        raw_key = decode_public_key(request.message.get("new_public_key"))
        if raw_key is None:
            raise RequestRefused("rotate_key needs a b64 32-byte new_public_key")
        new_key = base64.b64encode(raw_key).decode()
        if self.store.node_id_for_key(new_key) not in (None, node_id):
            raise RequestRefused("new key already belongs to another node")
        self.store.unindex_key(record.public_key)
        self.store.index_key(new_key, node_id)
        record.public_key = new_key
        self.store.save_node(record)
        return {
            "type": "rotate_key_ok",
            "node_id": node_id,
            "address": self._address(node_id),
            "public_key": new_key,
        }

    # -- lookups (§10.3, privacy §10.5) ----------------------------------------------------

    def _on_lookup(self, request: _Request) -> dict[str, Any]:
        record = self._alive(field_u32(request.message, "node_id"), "looked-up")
        response: dict[str, Any] = {
            "type": "lookup_ok",
            "node_id": record.node_id,
            "address": self._address(record.node_id),
            "networks": [BACKBONE_NETWORK],
            "public_key": record.public_key,
            "public": record.is_public,
            "polo_score": record.polo_score,
        }
        if record.hostname:
            response["hostname"] = record.hostname
        if record.tags:
            response["tags"] = list(record.tags)
        if record.task_exec:
            response["task_exec"] = True
        if record.is_public:
            response["real_addr"] = record.real_addr
        return response

    def _on_resolve(self, request: _Request) -> dict[str, Any]:
        requester_id = field_u32(request.message, "requester_id")
        node_id = field_u32(request.message, "node_id")
        self._signed_by(request, requester_id, challenge_resolve(requester_id, node_id))
        target = self._alive(node_id, "resolved")
        if not (target.is_public or requester_id == node_id or self.store.has_trust(requester_id, node_id)):
            raise RequestRefused(f"node {node_id} is private and does not trust {requester_id}")
        return {"type": "resolve_ok", "node_id": node_id, "real_addr": target.real_addr}

    def _on_resolve_hostname(self, request: _Request) -> dict[str, Any]:
        hostname = field_str(request.message, "hostname")
        node_id = self.store.node_id_for_hostname(hostname) if hostname else None
        record = self._alive(node_id or 0, f"hostname {hostname!r}")
        return {
            "type": "resolve_hostname_ok",
            "node_id": record.node_id,
            "address": self._address(record.node_id),
            "public": record.is_public,
            "hostname": hostname,
        }

    # -- node settings ---------------------------------------------------------------------

    def _on_set_hostname(self, request: _Request) -> dict[str, Any]:
        node_id = field_u32(request.message, "node_id")
        record = self._signed_by(request, node_id, challenge_node("set_hostname", node_id))
        hostname = field_str(request.message, "hostname")
        if hostname:
            problem = hostname_problem(hostname)
            if problem is not None:
                raise RequestRefused(problem)
            if self.store.node_id_for_hostname(hostname) not in (None, node_id):
                raise RequestRefused(f"hostname {hostname!r} is taken")
        record.hostname = hostname or None
        self.store.save_node(record)
        return {"type": "set_hostname_ok", "node_id": node_id, "hostname": hostname}

    def _on_set_visibility(self, request: _Request) -> dict[str, Any]:
        node_id = field_u32(request.message, "node_id")
        record = self._signed_by(request, node_id, challenge_node("set_visibility", node_id))
        record.is_public = field_bool(request.message, "public")
        self.store.save_node(record)
        return {
            "type": "set_visibility_ok",
            "node_id": node_id,
            "visibility": "public" if record.is_public else "private",
        }

    def _on_set_tags(self, request: _Request) -> dict[str, Any]:
        node_id = field_u32(request.message, "node_id")
        record = self._signed_by(request, node_id, challenge_node("set_tags", node_id))
        tags = normalize_tags(request.message.get("tags"))
        if tags is None:
            raise RequestRefused("invalid tags")
        record.tags = tuple(tags)
        self.store.save_node(record)
        return {"type": "set_tags_ok", "node_id": node_id, "tags": tags or None}

    def _on_set_task_exec(self, request: _Request) -> dict[str, Any]:
        node_id = field_u32(request.message, "node_id")
        record = self._signed_by(request, node_id, challenge_node("set_task_exec", node_id))
        record.task_exec = field_bool(request.message, "enabled")
        self.store.save_node(record)
        return {"type": "set_task_exec_ok", "node_id": node_id, "task_exec": record.task_exec}

    def _on_polo_score(self, request: _Request) -> dict[str, Any]:
        """``update_polo_score`` (+delta), ``set_polo_score``, ``get_polo_score``; unsigned."""
        kind = request.message["type"]
        record = self._alive(field_u32(request.message, "node_id"), "scored")
        if kind == "update_polo_score":
            record.polo_score += field_int(request.message, "delta") or 0
            self.store.save_node(record)
        elif kind == "set_polo_score":
            record.polo_score = field_int(request.message, "polo_score") or 0
            self.store.save_node(record)
        return {
            "type": f"{kind}_ok",
            "node_id": record.node_id,
            "address": self._address(record.node_id),
            "polo_score": record.polo_score,
        }

    # -- networks and beacons --------------------------------------------------------------

    def _on_list_networks(self, request: _Request) -> dict[str, Any]:
        backbone = {
            "id": BACKBONE_NETWORK,
            "name": "backbone",
            "members": self.store.count_alive(),
            "join_rule": "open",
        }
        return {"type": "list_networks_ok", "networks": [backbone]}

    def _on_beacon_register(self, request: _Request) -> dict[str, Any]:
        beacon_id = field_u32(request.message, "beacon_id")
        addr = field_str(request.message, "addr")
        if beacon_id == 0 or not addr or len(addr) > MAX_BEACON_ADDR_CHARS:
            raise RequestRefused("beacon_register needs a non-zero beacon_id and an addr")
        self.store.put_beacon(beacon_id, addr, request.now + BEACON_TTL_SECONDS)
        return {"type": "beacon_register_ok", "beacon_id": beacon_id}

    def _on_beacon_list(self, request: _Request) -> dict[str, Any]:
        beacons: list[dict[str, Any]] = []
        if self.local_beacon_addr:
            beacons.append({"id": LOCAL_BEACON_ID, "addr": self.local_beacon_addr})
        for beacon_id, addr in self.store.live_beacons(request.now):
            if not (self.local_beacon_addr and beacon_id == LOCAL_BEACON_ID):
                beacons.append({"id": beacon_id, "addr": addr})
        return {"type": "beacon_list_ok", "beacons": beacons}

    # -- trust and the relayed handshake (§10.3, §11) --------------------------------------

    def _on_report_trust(self, request: _Request) -> dict[str, Any]:
        node_id = field_u32(request.message, "node_id")
        peer_id = field_u32(request.message, "peer_id")
        self._signed_by(request, node_id, challenge_pair("report_trust", node_id, peer_id))
        self._alive(peer_id, "trusted")  # both must exist; self-trust is allowed
        self.store.add_trust(node_id, peer_id)
        return {"type": "report_trust_ok"}

    def _on_revoke_trust(self, request: _Request) -> dict[str, Any]:
        node_id = field_u32(request.message, "node_id")
        peer_id = field_u32(request.message, "peer_id")
        self._signed_by(request, node_id, challenge_pair("revoke_trust", node_id, peer_id))
        if not self.store.remove_trust(node_id, peer_id):
            raise RequestRefused(f"no trust pair {node_id}:{peer_id}")
        return {"type": "revoke_trust_ok"}

    def _on_request_handshake(self, request: _Request) -> dict[str, Any]:
        from_id = field_u32(request.message, "from_node_id")
        to_id = field_u32(request.message, "to_node_id")
        self._signed_by(request, from_id, challenge_pair("handshake", from_id, to_id))
        self._alive(to_id, "handshake target")
        justification = field_str(request.message, "justification")
        if len(justification) > MAX_JUSTIFICATION_CHARS:
            raise RequestRefused("justification too long")
        if self.store.count_handshake_requests(to_id) >= HANDSHAKE_INBOX_LIMIT:
            raise RequestRefused(f"handshake inbox of {to_id} is full")
        if self.store.has_handshake_request(to_id, from_id):
            raise RequestRefused(f"a request from {from_id} to {to_id} is already pending")
        self.store.add_handshake_request(to_id, from_id, justification, int(request.now))
        return {"type": "request_handshake_ok", "status": "delivered"}

    def _on_poll_handshakes(self, request: _Request) -> dict[str, Any]:
        node_id = field_u32(request.message, "node_id")
        self._signed_by(request, node_id, challenge_node("poll_handshakes", node_id))
        requests = [
            {"from_node_id": r.from_node_id, "justification": r.justification, "timestamp": r.timestamp}
            for r in self.store.take_handshake_requests(node_id)
        ]
        responses = [
            {"from_node_id": r.from_node_id, "accept": r.accept, "timestamp": r.timestamp}
            for r in self.store.take_handshake_responses(node_id)
        ]
        return {"type": "poll_handshakes_ok", "requests": requests, "responses": responses}

    def _on_respond_handshake(self, request: _Request) -> dict[str, Any]:
        node_id = field_u32(request.message, "node_id")
        peer_id = field_u32(request.message, "peer_id")
        self._signed_by(request, node_id, challenge_pair("respond", node_id, peer_id))
        if peer_id == 0 or self.store.get_node(peer_id) is None:
            raise RequestRefused(f"peer {peer_id} was never registered")
        accept = field_bool(request.message, "accept")
        if accept:
            self.store.add_trust(node_id, peer_id)
        self.store.add_handshake_response(
            peer_id, node_id, accept, int(request.now), limit=HANDSHAKE_INBOX_LIMIT
        )
        return {"type": "respond_handshake_ok", "accept": accept, "peer_id": peer_id}

    def _on_punch(self, request: _Request) -> dict[str, Any]:
        requester_id = field_u32(request.message, "requester_id")
        node_a = field_u32(request.message, "node_a")
        node_b = field_u32(request.message, "node_b")
        if requester_id not in (node_a, node_b):
            raise RequestRefused("punch requester must be node_a or node_b")
        self._signed_by(request, requester_id, challenge_pair("punch", node_a, node_b))
        record_a = self._alive(node_a, "punch")
        record_b = self._alive(node_b, "punch")
        return {
            "type": "punch_ok",
            "node_a": node_a,
            "node_a_addr": record_a.real_addr,
            "node_b": node_b,
            "node_b_addr": record_b.real_addr,
        }
