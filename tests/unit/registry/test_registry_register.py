# SPDX-License-Identifier: Apache-2.0
"""Registration, IDs, liveness and persistence (wire.md §10.4, §10.6)."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_harness import ERROR, T0, Harness, identity

from pilotsock.registry.rules import RegisterRateLimiter
from pilotsock.registry.service import RegistryService
from pilotsock.registry.store import NodeRecord, RegistryStore


def test_register_new_nodes_get_sequential_ids_and_canonical_fields(harness: Harness) -> None:
    alice, bob = identity(1), identity(2)
    first = harness.register(alice)
    assert first == {
        "type": "register_ok",
        "node_id": 1,
        "network_id": 0,
        "address": "0:0000.0000.0001",
        "public_key": alice.public_key_b64,
    }
    second = harness.register(bob)
    assert second["node_id"] == 2 and second["address"] == "0:0000.0000.0002"


def test_address_of_node_five(harness: Harness) -> None:
    for n in range(1, 6):
        response = harness.register(identity(n))
    assert response["address"] == "0:0000.0000.0005"


@pytest.mark.parametrize(
    "public_key",
    [None, "", "not-base64!!", "AAAA", "A" * 44, 12345, ["x"]],
)
def test_register_requires_a_32_byte_b64_public_key(harness: Harness, public_key: object) -> None:
    message = {"type": "register", "listen_addr": "0.0.0.0:4000"}
    if public_key is not None:
        message["public_key"] = public_key
    assert harness.send(message) == ERROR


def test_same_key_gets_same_id_and_endpoint_moves(harness: Harness) -> None:
    alice = identity(1)
    node = harness.node(alice, ip="10.0.0.1", listen_addr=":4000")
    harness.signed(
        alice, f"set_visibility:{node}", {"type": "set_visibility", "node_id": node, "public": True}
    )
    again = harness.register(alice, ip="10.9.9.9", listen_addr="1.2.3.4:5555", now=T0 + 10)
    assert again["node_id"] == node
    lookup = harness.send({"type": "lookup", "node_id": node})
    assert lookup["real_addr"] == "10.9.9.9:5555"
    assert lookup["public"] is True  # alive re-registration keeps state


@pytest.mark.parametrize(
    ("listen_addr", "source_ip", "source_port", "expected"),
    [
        ("0.0.0.0:4000", "192.0.2.7", 51000, "192.0.2.7:4000"),
        ("", "192.0.2.7", 51000, "192.0.2.7:51000"),
        ("garbage", "192.0.2.7", 51000, "192.0.2.7:51000"),
        ("host:notaport", "192.0.2.7", 51000, "192.0.2.7:51000"),
        ("[::]:4000", "2001:db8::1", 51000, "[2001:db8::1]:4000"),
        ("", "2001:db8::1", 51000, "[2001:db8::1]:51000"),
        ("x:4000", "::ffff:192.0.2.7", 51000, "192.0.2.7:4000"),
    ],
)
def test_real_addr_is_tcp_source_ip_plus_listen_port(
    harness: Harness, listen_addr: str, source_ip: str, source_port: int, expected: str
) -> None:
    who = identity(1)
    node = harness.node(who, ip=source_ip, port=source_port, listen_addr=listen_addr)
    harness.signed(who, f"set_visibility:{node}", {"type": "set_visibility", "node_id": node, "public": True})
    assert harness.send({"type": "lookup", "node_id": node})["real_addr"] == expected


def test_reaped_node_is_recreated_with_same_id_in_default_state(harness: Harness) -> None:
    alice = identity(1)
    node = harness.node(alice, hostname="alice")
    harness.signed(
        alice, f"set_visibility:{node}", {"type": "set_visibility", "node_id": node, "public": True}
    )
    harness.signed(alice, f"set_tags:{node}", {"type": "set_tags", "node_id": node, "tags": ["gpu"]})
    harness.send({"type": "set_polo_score", "node_id": node, "polo_score": 7})
    assert harness.service.reap(T0 + 181) == [node]
    again = harness.register(alice, now=T0 + 200)
    assert again["node_id"] == node and "hostname" not in again
    lookup = harness.send({"type": "lookup", "node_id": node}, now=T0 + 200)
    assert lookup["public"] is False and lookup["polo_score"] == 0
    assert "tags" not in lookup and "hostname" not in lookup


def test_deregistered_key_comes_back_with_same_id(harness: Harness) -> None:
    alice = identity(1)
    node = harness.node(alice)
    assert harness.signed(alice, f"deregister:{node}", {"type": "deregister", "node_id": node}) == {
        "type": "deregister_ok"
    }
    assert harness.send({"type": "lookup", "node_id": node}) == ERROR
    assert harness.register(alice)["node_id"] == node


def test_ids_are_never_reused(harness: Harness) -> None:
    a, b, c = identity(1), identity(2), identity(3)
    harness.node(a)
    node_b = harness.node(b)
    harness.signed(b, f"deregister:{node_b}", {"type": "deregister", "node_id": node_b})
    assert harness.node(c) == 3


def test_owner_reclaims_alive_node_by_replacing_its_key(harness: Harness) -> None:
    old, new = identity(1), identity(2)
    node = harness.node(old, owner="ops@example")
    response = harness.register(new, owner="ops@example")
    assert response["node_id"] == node and response["public_key"] == new.public_key_b64
    assert harness.send({"type": "lookup", "node_id": node})["public_key"] == new.public_key_b64
    # The old key no longer names the node: it becomes a new node.
    assert harness.node(old) == node + 1


def test_owner_reclaims_id_of_a_gone_node(harness: Harness) -> None:
    old, new = identity(1), identity(2)
    node = harness.node(old, owner="ops@example")
    harness.service.reap(T0 + 500)
    response = harness.register(new, owner="ops@example", now=T0 + 600)
    assert response["node_id"] == node


def test_unknown_owner_gives_new_id(harness: Harness) -> None:
    harness.node(identity(1), owner="a")
    assert harness.register(identity(2), owner="b")["node_id"] == 2


def test_register_hostname_set_taken_skipped_invalid_reported(harness: Harness) -> None:
    first = harness.register(identity(1), hostname="alice")
    assert first["hostname"] == "alice"
    taken = harness.register(identity(2), hostname="alice")
    assert taken["type"] == "register_ok" and "hostname" not in taken
    assert "hostname_error" not in taken
    invalid = harness.register(identity(3), hostname="Not Valid")
    assert invalid["type"] == "register_ok" and invalid["hostname_error"]
    assert "hostname" not in invalid


def test_register_rate_limit_per_source_ip(harness: Harness) -> None:
    for n in range(1, 11):
        assert harness.register(identity(n), ip="10.0.0.1")["type"] == "register_ok"
    assert harness.register(identity(11), ip="10.0.0.1") == ERROR
    # Other sources have their own bucket; known keys are exempt.
    assert harness.register(identity(12), ip="10.0.0.2")["type"] == "register_ok"
    assert harness.register(identity(1), ip="10.0.0.1")["type"] == "register_ok"
    # Continuous refill: one token every 6 s.
    assert harness.register(identity(11), ip="10.0.0.1", now=T0 + 5.9) == ERROR
    assert harness.register(identity(11), ip="10.0.0.1", now=T0 + 6.1)["type"] == "register_ok"


def test_rate_limited_register_allocates_no_id(harness: Harness) -> None:
    for n in range(1, 12):
        harness.register(identity(n))
    assert harness.register(identity(50), ip="10.0.0.9")["node_id"] == 11


def test_rate_limiter_forgets_idle_sources() -> None:
    limiter = RegisterRateLimiter(rate=2, window_seconds=60)
    assert limiter.allow("a", 0.0) and limiter.allow("a", 0.0) and not limiter.allow("a", 0.0)
    limiter.cleanup(100.0)
    assert limiter.tracked_sources == 1
    limiter.cleanup(121.0)
    assert limiter.tracked_sources == 0


def test_reaping_at_180_seconds(harness: Harness) -> None:
    alice, bob = identity(1), identity(2)
    a = harness.node(alice, hostname="alice")
    b = harness.node(bob, now=T0 + 100)
    harness.signed(alice, f"report_trust:{a}:{b}", {"type": "report_trust", "node_id": a, "peer_id": b})
    harness.signed(
        bob,
        f"handshake:{b}:{a}",
        {"type": "request_handshake", "from_node_id": b, "to_node_id": a, "justification": "hi"},
        now=T0 + 100,
    )
    assert harness.service.reap(T0 + 180) == []  # exactly 180 s: not yet
    assert harness.service.reap(T0 + 180.5) == [a]
    assert harness.send({"type": "lookup", "node_id": a}, now=T0 + 181) == ERROR
    assert harness.send({"type": "resolve_hostname", "hostname": "alice"}) == ERROR
    # The hostname is free again; the trust pair and the inbox survive.
    carol = identity(3)
    assert harness.register(carol, hostname="alice", now=T0 + 182)["hostname"] == "alice"
    assert harness.service.store.has_trust(a, b)
    harness.register(alice, now=T0 + 190)
    polled = harness.signed(
        alice, f"poll_handshakes:{a}", {"type": "poll_handshakes", "node_id": a}, now=T0 + 190
    )
    assert [r["from_node_id"] for r in polled["requests"]] == [b]


def test_heartbeat_keeps_a_node_alive(harness: Harness) -> None:
    alice = identity(1)
    node = harness.node(alice)
    for step in range(1, 10):
        response = harness.signed(
            alice, f"heartbeat:{node}", {"type": "heartbeat", "node_id": node}, now=T0 + 30 * step
        )
        assert response == {"type": "heartbeat_ok", "time": int(T0 + 30 * step)}
        assert harness.service.reap(T0 + 30 * step + 60) == []


class _FailingStore(RegistryStore):
    """Fails the first node write, to prove a request is one transaction."""

    fail_next_save = True

    def save_node(self, record: NodeRecord) -> None:
        if self.fail_next_save:
            self.fail_next_save = False
            raise RuntimeError("disk on fire")
        super().save_node(record)


def test_failed_request_leaves_no_partial_change(tmp_path: Path) -> None:
    store = _FailingStore(tmp_path / "r.db")
    harness = Harness(RegistryService(store))
    assert harness.register(identity(1)) == ERROR
    # The counter increment and key index entry were rolled back.
    assert store.node_id_for_key(identity(1).public_key_b64) is None
    assert harness.register(identity(2))["node_id"] == 1
    store.close()


def test_restart_keeps_ids_hostnames_and_trust(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    alice, bob = identity(1), identity(2)
    store = RegistryStore(path)
    harness = Harness(RegistryService(store))
    a = harness.node(alice, hostname="alice")
    b = harness.node(bob)
    harness.signed(alice, f"report_trust:{a}:{b}", {"type": "report_trust", "node_id": a, "peer_id": b})
    store.close()

    store = RegistryStore(path)
    harness = Harness(RegistryService(store))
    assert harness.send({"type": "resolve_hostname", "hostname": "alice"})["node_id"] == a
    resolved = harness.signed(bob, f"resolve:{b}:{a}", {"type": "resolve", "requester_id": b, "node_id": a})
    assert resolved["type"] == "resolve_ok"  # private, but the trust pair survived
    again = harness.register(alice, now=T0 + 5)
    assert again["node_id"] == a and again["hostname"] == "alice"
    assert harness.node(identity(3)) == 3
    store.close()
