# SPDX-License-Identifier: Apache-2.0
"""Every registry message of wire.md §10.3: success and failure, signatures (§10.2), privacy
(§10.5) and hostname/tag rules (§14). Time is always an explicit ``now``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from registry_harness import ERROR, T0, Harness, identity

from pilotsock.identity import Identity
from pilotsock.registry.service import RegistryService
from pilotsock.registry.store import RegistryStore
from pilotsock.wire.registry_messages import encode_registry_message

ALICE, BOB, CAROL = identity(1), identity(2), identity(3)


@pytest.fixture
def pair(harness: Harness) -> tuple[int, int]:
    """Alice (node 1, private) and Bob (node 2, private)."""
    return harness.node(ALICE, ip="192.0.2.1"), harness.node(BOB, ip="192.0.2.2")


def _resolve(harness: Harness, who: Identity, requester: int, node: int) -> dict[str, Any]:
    return harness.signed(
        who, f"resolve:{requester}:{node}", {"type": "resolve", "requester_id": requester, "node_id": node}
    )


# -- every signed request rejects a wrong key and a wrong challenge -------------------------

# (type, extra fields given node ids a/b, the correct challenge)
SIGNED: list[tuple[str, Callable[[int, int], dict[str, Any]], Callable[[int, int], str]]] = [
    ("resolve", lambda a, b: {"requester_id": a, "node_id": b}, lambda a, b: f"resolve:{a}:{b}"),
    ("report_trust", lambda a, b: {"node_id": a, "peer_id": b}, lambda a, b: f"report_trust:{a}:{b}"),
    ("set_visibility", lambda a, b: {"node_id": a, "public": True}, lambda a, b: f"set_visibility:{a}"),
    ("set_hostname", lambda a, b: {"node_id": a, "hostname": "x"}, lambda a, b: f"set_hostname:{a}"),
    ("set_tags", lambda a, b: {"node_id": a, "tags": ["t"]}, lambda a, b: f"set_tags:{a}"),
    ("set_task_exec", lambda a, b: {"node_id": a, "enabled": True}, lambda a, b: f"set_task_exec:{a}"),
    ("heartbeat", lambda a, b: {"node_id": a}, lambda a, b: f"heartbeat:{a}"),
    ("deregister", lambda a, b: {"node_id": a}, lambda a, b: f"deregister:{a}"),
    ("poll_handshakes", lambda a, b: {"node_id": a}, lambda a, b: f"poll_handshakes:{a}"),
    (
        "request_handshake",
        lambda a, b: {"from_node_id": a, "to_node_id": b, "justification": ""},
        lambda a, b: f"handshake:{a}:{b}",
    ),
    (
        "respond_handshake",
        lambda a, b: {"node_id": a, "peer_id": b, "accept": True},
        lambda a, b: f"respond:{a}:{b}",
    ),
    ("punch", lambda a, b: {"requester_id": a, "node_a": a, "node_b": b}, lambda a, b: f"punch:{a}:{b}"),
    (
        "rotate_key",
        lambda a, b: {"node_id": a, "new_public_key": CAROL.public_key_b64},
        lambda a, b: f"rotate:{a}",
    ),
]


@pytest.mark.parametrize(("kind", "fields", "challenge"), SIGNED, ids=[s[0] for s in SIGNED])
def test_signed_requests_check_key_and_challenge(
    harness: Harness,
    pair: tuple[int, int],
    kind: str,
    fields: Callable[[int, int], dict[str, Any]],
    challenge: Callable[[int, int], str],
) -> None:
    a, b = pair
    harness.signed(BOB, f"set_visibility:{b}", {"type": "set_visibility", "node_id": b, "public": True})
    message = {"type": kind, **fields(a, b)}
    assert harness.signed(BOB, challenge(a, b), message) == ERROR  # wrong key
    assert harness.signed(ALICE, challenge(a, b) + "x", message) == ERROR  # wrong challenge
    assert harness.signed(ALICE, challenge(b, a), message) == ERROR  # swapped IDs
    assert harness.send({**message, "signature": 12}) == ERROR
    assert harness.send(message) == ERROR  # unsigned
    assert harness.signed(ALICE, challenge(a, b), message)["type"] == f"{kind}_ok"


# -- lookup and privacy ---------------------------------------------------------------------


def test_lookup_private_node_hides_real_addr(harness: Harness, pair: tuple[int, int]) -> None:
    a, _ = pair
    assert harness.send({"type": "lookup", "node_id": a}) == {
        "type": "lookup_ok",
        "node_id": a,
        "address": "0:0000.0000.0001",
        "networks": [0],
        "public_key": ALICE.public_key_b64,
        "public": False,
        "polo_score": 0,
    }


def test_lookup_public_node_with_every_optional_field(harness: Harness) -> None:
    node = harness.node(ALICE, ip="192.0.2.1", hostname="alice")
    harness.signed(
        ALICE, f"set_visibility:{node}", {"type": "set_visibility", "node_id": node, "public": True}
    )
    harness.signed(ALICE, f"set_tags:{node}", {"type": "set_tags", "node_id": node, "tags": ["#gpu", "llm"]})
    harness.signed(
        ALICE, f"set_task_exec:{node}", {"type": "set_task_exec", "node_id": node, "enabled": True}
    )
    lookup = harness.send({"type": "lookup", "node_id": node})
    assert lookup["real_addr"] == "192.0.2.1:4000"
    assert lookup["hostname"] == "alice" and lookup["tags"] == ["gpu", "llm"]
    assert lookup["task_exec"] is True and lookup["public"] is True


@pytest.mark.parametrize("node_id", [99, 0, -1, "1", True, None, 1.5e20])
def test_lookup_unknown_or_invalid_node(harness: Harness, pair: tuple[int, int], node_id: object) -> None:
    assert harness.send({"type": "lookup", "node_id": node_id}) == ERROR


def test_resolve_privacy_rules(harness: Harness, pair: tuple[int, int]) -> None:
    a, b = pair
    assert _resolve(harness, BOB, b, a) == ERROR  # private, no trust
    harness.signed(ALICE, f"report_trust:{a}:{b}", {"type": "report_trust", "node_id": a, "peer_id": b})
    assert _resolve(harness, BOB, b, a) == {"type": "resolve_ok", "node_id": a, "real_addr": "192.0.2.1:4000"}
    harness.signed(BOB, f"revoke_trust:{b}:{a}", {"type": "revoke_trust", "node_id": b, "peer_id": a})
    assert _resolve(harness, BOB, b, a) == ERROR
    harness.signed(ALICE, f"set_visibility:{a}", {"type": "set_visibility", "node_id": a, "public": True})
    assert _resolve(harness, BOB, b, a)["real_addr"] == "192.0.2.1:4000"  # public


def test_resolve_requires_registered_requester_and_target(harness: Harness, pair: tuple[int, int]) -> None:
    a, _ = pair
    assert _resolve(harness, CAROL, 3, a) == ERROR  # requester unknown
    assert _resolve(harness, ALICE, a, 42) == ERROR  # target unknown
    assert _resolve(harness, ALICE, a, a)["type"] == "resolve_ok"  # one's own address


def test_resolve_hostname(harness: Harness) -> None:
    node = harness.node(ALICE, hostname="alice")
    assert harness.send({"type": "resolve_hostname", "hostname": "alice"}) == {
        "type": "resolve_hostname_ok",
        "node_id": node,
        "address": "0:0000.0000.0001",
        "public": False,
        "hostname": "alice",
    }
    assert harness.send({"type": "resolve_hostname", "hostname": "bob"}) == ERROR
    assert harness.send({"type": "resolve_hostname", "hostname": ""}) == ERROR
    assert harness.send({"type": "resolve_hostname"}) == ERROR


# -- hostnames (§14) ------------------------------------------------------------------------

VALID_HOSTNAMES = ["alice", "my-agent", "node42", "a", "a" * 63, "0", "9-x"]
INVALID_HOSTNAMES = [
    "Alice",
    "hello world",
    "-start",
    "end-",
    "hello@world",
    "hello.world",
    "a" * 64,
    "localhost",
    "backbone",
    "broadcast",
    "tab\t",
    "alice\n",
    "é",
]


def _set_hostname(harness: Harness, node: int, hostname: object) -> dict[str, Any]:
    return harness.signed(
        ALICE, f"set_hostname:{node}", {"type": "set_hostname", "node_id": node, "hostname": hostname}
    )


@pytest.mark.parametrize("hostname", VALID_HOSTNAMES)
def test_valid_hostnames(harness: Harness, hostname: str) -> None:
    node = harness.node(ALICE)
    assert _set_hostname(harness, node, hostname) == {
        "type": "set_hostname_ok",
        "node_id": node,
        "hostname": hostname,
    }
    assert harness.register(BOB, hostname=hostname)["type"] == "register_ok"


@pytest.mark.parametrize("hostname", INVALID_HOSTNAMES)
def test_invalid_hostnames(harness: Harness, hostname: str) -> None:
    node = harness.node(ALICE)
    assert _set_hostname(harness, node, hostname) == ERROR
    registered = harness.register(BOB, hostname=hostname)
    assert registered["type"] == "register_ok" and "hostname_error" in registered


def test_set_hostname_taken_clear_and_rename(harness: Harness, pair: tuple[int, int]) -> None:
    a, b = pair
    assert _set_hostname(harness, a, "shared")["hostname"] == "shared"
    assert _set_hostname(harness, a, "shared")["type"] == "set_hostname_ok"  # own name again
    taken = harness.signed(
        BOB, f"set_hostname:{b}", {"type": "set_hostname", "node_id": b, "hostname": "shared"}
    )
    assert taken == ERROR
    assert _set_hostname(harness, a, "")["hostname"] == ""  # "" clears
    assert harness.send({"type": "resolve_hostname", "hostname": "shared"}) == ERROR
    assert (
        harness.signed(
            BOB, f"set_hostname:{b}", {"type": "set_hostname", "node_id": b, "hostname": "shared"}
        )["type"]
        != "error"
    )
    assert _set_hostname(harness, a, 5) == {
        "type": "set_hostname_ok",
        "node_id": a,
        "hostname": "",
    }  # non-string decodes as ""


# -- other node settings --------------------------------------------------------------------


def test_set_visibility(harness: Harness, pair: tuple[int, int]) -> None:
    a, _ = pair
    message = {"type": "set_visibility", "node_id": a}
    assert harness.signed(ALICE, f"set_visibility:{a}", {**message, "public": True}) == {
        "type": "set_visibility_ok",
        "node_id": a,
        "visibility": "public",
    }
    assert harness.signed(ALICE, f"set_visibility:{a}", {**message, "public": False}) == {
        "type": "set_visibility_ok",
        "node_id": a,
        "visibility": "private",
    }
    assert harness.signed(ALICE, f"set_visibility:{9}", {**message, "node_id": 9}) == ERROR


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["gpu", "#llm"], ["gpu", "llm"]),
        ([], None),
        (None, None),
        (["a" * 32], ["a" * 32]),
        ([f"t{n}" for n in range(10)], [f"t{n}" for n in range(10)]),
    ],
)
def test_set_tags_valid(harness: Harness, pair: tuple[int, int], tags: object, expected: object) -> None:
    a, _ = pair
    response = harness.signed(ALICE, f"set_tags:{a}", {"type": "set_tags", "node_id": a, "tags": tags})
    assert response == {"type": "set_tags_ok", "node_id": a, "tags": expected}


@pytest.mark.parametrize(
    "tags",
    [
        ["GPU"],
        ["a" * 33],
        ["-x"],
        ["x-"],
        ["has space"],
        [""],
        ["#"],
        [1],
        [f"t{n}" for n in range(11)],
        "gpu",
        {"a": 1},
    ],
)
def test_set_tags_invalid(harness: Harness, pair: tuple[int, int], tags: object) -> None:
    a, _ = pair
    assert harness.signed(ALICE, f"set_tags:{a}", {"type": "set_tags", "node_id": a, "tags": tags}) == ERROR


def test_set_task_exec(harness: Harness, pair: tuple[int, int]) -> None:
    a, _ = pair
    response = harness.signed(
        ALICE, f"set_task_exec:{a}", {"type": "set_task_exec", "node_id": a, "enabled": True}
    )
    assert response == {"type": "set_task_exec_ok", "node_id": a, "task_exec": True}
    response = harness.signed(ALICE, f"set_task_exec:{a}", {"type": "set_task_exec", "node_id": a})
    assert response["task_exec"] is False
    assert "task_exec" not in harness.send({"type": "lookup", "node_id": a})


def test_heartbeat_unknown_node(harness: Harness) -> None:
    assert harness.signed(ALICE, "heartbeat:7", {"type": "heartbeat", "node_id": 7}) == ERROR


def test_deregister_unknown_node_needs_no_signature(harness: Harness) -> None:
    assert harness.send({"type": "deregister", "node_id": 77}) == {"type": "deregister_ok"}


def test_rotate_key(harness: Harness, pair: tuple[int, int]) -> None:
    a, b = pair
    rotate = {"type": "rotate_key", "node_id": a, "new_public_key": CAROL.public_key_b64}
    assert harness.signed(ALICE, f"rotate:{a}", rotate) == {
        "type": "rotate_key_ok",
        "node_id": a,
        "address": "0:0000.0000.0001",
        "public_key": CAROL.public_key_b64,
    }
    assert harness.signed(ALICE, f"heartbeat:{a}", {"type": "heartbeat", "node_id": a}) == ERROR
    assert (
        harness.signed(CAROL, f"heartbeat:{a}", {"type": "heartbeat", "node_id": a})["type"] == "heartbeat_ok"
    )
    assert harness.register(CAROL)["node_id"] == a
    # A key that already names another node cannot be taken over.
    steal = {"type": "rotate_key", "node_id": a, "new_public_key": BOB.public_key_b64}
    assert harness.signed(CAROL, f"rotate:{a}", steal) == ERROR
    bad = {"type": "rotate_key", "node_id": a, "new_public_key": "short"}
    assert harness.signed(CAROL, f"rotate:{a}", bad) == ERROR
    assert b == 2


def test_polo_score_messages(harness: Harness, pair: tuple[int, int]) -> None:
    a, _ = pair
    expected = {"node_id": a, "address": "0:0000.0000.0001"}
    assert harness.send({"type": "update_polo_score", "node_id": a, "delta": 5}) == {
        "type": "update_polo_score_ok",
        **expected,
        "polo_score": 5,
    }
    assert harness.send({"type": "update_polo_score", "node_id": a, "delta": -7})["polo_score"] == -2
    assert harness.send({"type": "set_polo_score", "node_id": a, "polo_score": 40}) == {
        "type": "set_polo_score_ok",
        **expected,
        "polo_score": 40,
    }
    assert harness.send({"type": "get_polo_score", "node_id": a}) == {
        "type": "get_polo_score_ok",
        **expected,
        "polo_score": 40,
    }
    for kind in ("update_polo_score", "set_polo_score", "get_polo_score"):
        assert harness.send({"type": kind, "node_id": 99, "delta": 1, "polo_score": 1}) == ERROR


# -- trust and relayed handshakes -----------------------------------------------------------


def test_report_and_revoke_trust(harness: Harness, pair: tuple[int, int]) -> None:
    a, b = pair
    report = {"type": "report_trust", "node_id": a}
    assert harness.signed(ALICE, f"report_trust:{a}:{b}", {**report, "peer_id": b}) == {
        "type": "report_trust_ok"
    }
    assert harness.signed(ALICE, f"report_trust:{a}:{a}", {**report, "peer_id": a}) == {
        "type": "report_trust_ok"
    }  # self-trust is allowed
    assert harness.signed(ALICE, f"report_trust:{a}:9", {**report, "peer_id": 9}) == ERROR
    assert harness.service.store.trust_pairs() == ["1:1", "1:2"]
    revoke = {"type": "revoke_trust", "node_id": a, "peer_id": b}
    assert harness.signed(ALICE, f"revoke_trust:{a}:{b}", revoke) == {"type": "revoke_trust_ok"}
    assert harness.signed(ALICE, f"revoke_trust:{a}:{b}", revoke) == ERROR  # no such pair


def test_relayed_handshake_flow(harness: Harness, pair: tuple[int, int]) -> None:
    a, b = pair
    request = {"type": "request_handshake", "from_node_id": a, "to_node_id": b, "justification": "let's talk"}
    assert harness.signed(ALICE, f"handshake:{a}:{b}", request, now=T0 + 1) == {
        "type": "request_handshake_ok",
        "status": "delivered",
    }
    assert harness.signed(ALICE, f"handshake:{a}:{b}", request) == ERROR  # already pending
    assert harness.signed(ALICE, f"handshake:{a}:9", {**request, "to_node_id": 9}) == ERROR

    poll_b = {"type": "poll_handshakes", "node_id": b}
    assert harness.signed(BOB, f"poll_handshakes:{b}", poll_b) == {
        "type": "poll_handshakes_ok",
        "requests": [{"from_node_id": a, "justification": "let's talk", "timestamp": int(T0 + 1)}],
        "responses": [],
    }
    assert harness.signed(BOB, f"poll_handshakes:{b}", poll_b)["requests"] == []  # cleared

    respond = {"type": "respond_handshake", "node_id": b, "peer_id": a, "accept": True}
    assert harness.signed(BOB, f"respond:{b}:{a}", respond, now=T0 + 2) == {
        "type": "respond_handshake_ok",
        "accept": True,
        "peer_id": a,
    }
    assert harness.service.store.has_trust(a, b)
    poll_a = harness.signed(ALICE, f"poll_handshakes:{a}", {"type": "poll_handshakes", "node_id": a})
    assert poll_a["responses"] == [{"from_node_id": b, "accept": True, "timestamp": int(T0 + 2)}]
    reject = {**respond, "accept": False}
    assert harness.signed(BOB, f"respond:{b}:{a}", reject)["accept"] is False
    assert harness.signed(BOB, f"respond:{b}:99", {**respond, "peer_id": 99}) == ERROR


def test_handshake_inbox_holds_100(harness: Harness) -> None:
    target = harness.node(ALICE)
    senders = [identity(10 + n) for n in range(101)]
    ids = [harness.node(s, ip=f"10.1.{n}.1") for n, s in enumerate(senders)]
    for sender, node in zip(senders[:100], ids[:100], strict=True):
        response = harness.signed(
            sender,
            f"handshake:{node}:{target}",
            {"type": "request_handshake", "from_node_id": node, "to_node_id": target},
        )
        assert response["type"] == "request_handshake_ok"
    last = harness.signed(
        senders[100],
        f"handshake:{ids[100]}:{target}",
        {"type": "request_handshake", "from_node_id": ids[100], "to_node_id": target},
    )
    assert last == ERROR


def test_punch(harness: Harness, pair: tuple[int, int]) -> None:
    a, b = pair
    punch = {"type": "punch", "requester_id": a, "node_a": a, "node_b": b}
    assert harness.signed(ALICE, f"punch:{a}:{b}", punch) == {
        "type": "punch_ok",
        "node_a": a,
        "node_a_addr": "192.0.2.1:4000",
        "node_b": b,
        "node_b_addr": "192.0.2.2:4000",
    }
    outsider = harness.node(CAROL)
    assert harness.signed(CAROL, f"punch:{a}:{b}", {**punch, "requester_id": outsider}) == ERROR
    assert harness.signed(ALICE, f"punch:{a}:9", {**punch, "node_b": 9}) == ERROR


# -- networks, beacons, unsupported types ---------------------------------------------------


def test_list_networks_has_only_the_backbone(harness: Harness, pair: tuple[int, int]) -> None:
    assert harness.send({"type": "list_networks"}) == {
        "type": "list_networks_ok",
        "networks": [{"id": 0, "name": "backbone", "members": 2, "join_rule": "open"}],
    }


@pytest.mark.parametrize(
    "message",
    [
        {"type": "list_nodes", "network_id": 0},
        {"type": "list_nodes", "network_id": 1},
        {"type": "create_network", "node_id": 1, "name": "x", "join_rule": "open"},
        {"type": "join_network", "node_id": 1, "network_id": 1},
        {"type": "leave_network", "node_id": 1, "network_id": 1},
        {"type": "get_network_policy", "network_id": 0},
        {"type": "subscribe_replication", "token": "t"},
        {"type": "no_such_message"},
        {"type": "register_ok"},
        {"type": ""},
    ],
)
def test_unsupported_requests_fail_generically(
    harness: Harness, pair: tuple[int, int], message: dict[str, Any]
) -> None:
    assert harness.send(message) == ERROR


def test_beacon_register_and_list(harness: Harness) -> None:
    assert harness.send({"type": "beacon_register", "beacon_id": 7, "addr": "192.0.2.9:9001"}) == {
        "type": "beacon_register_ok",
        "beacon_id": 7,
    }
    assert (
        harness.send({"type": "beacon_register", "beacon_id": 1, "addr": "x:1"})["type"]
        == "beacon_register_ok"
    )
    listing = harness.send({"type": "beacon_list"}, now=T0 + 59)
    # The co-located beacon is always listed as beacon 1 and wins over a registered 1.
    assert listing == {
        "type": "beacon_list_ok",
        "beacons": [{"id": 1, "addr": "127.0.0.1:9001"}, {"id": 7, "addr": "192.0.2.9:9001"}],
    }
    assert harness.send({"type": "beacon_list"}, now=T0 + 60)["beacons"] == [
        {"id": 1, "addr": "127.0.0.1:9001"}
    ]  # TTL 60 s
    harness.service.reap(T0 + 61)
    assert harness.service.store.live_beacons(0.0) == []


@pytest.mark.parametrize(
    "message",
    [
        {"type": "beacon_register", "beacon_id": 0, "addr": "x:1"},
        {"type": "beacon_register", "beacon_id": 5},
        {"type": "beacon_register", "beacon_id": 5, "addr": "x" * 300},
    ],
)
def test_beacon_register_rejects(harness: Harness, message: dict[str, Any]) -> None:
    assert harness.send(message) == ERROR


# -- robustness: arbitrary field values never break the handler ------------------------------

_TYPES = [kind for kind, _, _ in SIGNED] + [
    "register",
    "lookup",
    "resolve_hostname",
    "update_polo_score",
    "set_polo_score",
    "get_polo_score",
    "list_networks",
    "list_nodes",
    "beacon_register",
    "beacon_list",
    "revoke_trust",
    "create_network",
    "bogus",
]
_FIELDS = [
    "node_id",
    "peer_id",
    "requester_id",
    "from_node_id",
    "to_node_id",
    "node_a",
    "node_b",
    "public_key",
    "new_public_key",
    "listen_addr",
    "hostname",
    "owner",
    "tags",
    "public",
    "enabled",
    "accept",
    "delta",
    "polo_score",
    "beacon_id",
    "addr",
    "signature",
    "justification",
    "network_id",
]
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.sampled_from(_TYPES), st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=6))
def test_fuzz_handle_returns_an_encodable_response(kind: str, fields: dict[str, Any]) -> None:
    store = RegistryStore(":memory:")
    harness = Harness(RegistryService(store))
    harness.node(ALICE)
    internal_errors: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = internal_errors.append  # type: ignore[method-assign]
    logger = logging.getLogger("pilotsock.registry.service")
    logger.addHandler(handler)
    try:
        response = harness.send({**fields, "type": kind})
    finally:
        logger.removeHandler(handler)
        store.close()
    assert response == ERROR or response["type"] == f"{kind}_ok"
    assert internal_errors == []  # refusals only, never an unexpected exception
    encode_registry_message(response)
