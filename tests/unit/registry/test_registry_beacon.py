# SPDX-License-Identifier: Apache-2.0
"""BeaconService on raw datagrams (wire.md §9)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pilotsock.registry.beacon import BeaconService

A = ("192.0.2.1", 40001)
B = ("198.51.100.2", 40002)


def discover(node: int) -> bytes:
    return b"\x01" + node.to_bytes(4, "big")


def test_discover_replies_with_observed_address_and_records_node() -> None:
    beacon = BeaconService()
    out = beacon.handle(discover(5), A, 0.0)
    assert out == [(b"\x02\x04" + bytes([192, 0, 2, 1]) + (40001).to_bytes(2, "big"), A)]
    assert beacon.endpoint_of(5) == A


def test_discover_node_zero_is_only_answered() -> None:
    beacon = BeaconService()
    assert len(beacon.handle(discover(0), A, 0.0)) == 1
    assert beacon.known_nodes == 0


def test_discover_ipv6_and_mapped_sources() -> None:
    beacon = BeaconService()
    [(reply, _)] = beacon.handle(discover(1), ("2001:db8::7", 9, 0, 0), 0.0)
    assert reply[:2] == b"\x02\x10" and len(reply) == 2 + 16 + 2
    [(reply, dest)] = beacon.handle(discover(2), ("::ffff:192.0.2.1", 9, 0, 0), 0.0)
    assert reply == b"\x02\x04\xc0\x00\x02\x01\x00\x09" and dest == ("192.0.2.1", 9)


def test_punch_request_commands_both_sides() -> None:
    beacon = BeaconService()
    beacon.handle(discover(2), B, 0.0)
    out = beacon.handle(b"\x03" + (1).to_bytes(4, "big") + (2).to_bytes(4, "big"), A, 1.0)
    to_a = b"\x04\x04" + bytes([198, 51, 100, 2]) + (40002).to_bytes(2, "big")
    to_b = b"\x04\x04" + bytes([192, 0, 2, 1]) + (40001).to_bytes(2, "big")
    assert out == [(to_a, A), (to_b, B)]
    assert beacon.endpoint_of(1) == A  # the requester was refreshed


def test_punch_request_for_unknown_target_refreshes_requester_only() -> None:
    beacon = BeaconService()
    assert beacon.handle(b"\x03" + (1).to_bytes(4, "big") + (2).to_bytes(4, "big"), A, 0.0) == []
    assert beacon.endpoint_of(1) == A
    assert beacon.counters["beacon.punch_target_unknown"] == 1


def test_relay_delivers_to_known_destination_and_drops_otherwise() -> None:
    beacon = BeaconService()
    beacon.handle(discover(2), B, 0.0)
    relay = b"\x05" + (1).to_bytes(4, "big") + (2).to_bytes(4, "big") + b"PILSframe"
    assert beacon.handle(relay, A, 1.0) == [(b"\x06" + (1).to_bytes(4, "big") + b"PILSframe", B)]
    assert beacon.endpoint_of(1) is None  # relay senders are not authenticated: not recorded
    lost = b"\x05" + (1).to_bytes(4, "big") + (3).to_bytes(4, "big") + b"x"
    assert beacon.handle(lost, A, 1.0) == []
    assert beacon.counters["beacon.relay_destination_unknown"] == 1


def test_unexpected_and_malformed_datagrams_are_counted() -> None:
    beacon = BeaconService()
    for datagram in [
        b"",
        b"\x01\x00",
        b"\x02\x04\x01\x02\x03\x04\x00\x01",
        b"\x07" + b"\0" * 6,
        b"\xff",
        b"\x03\x00\x00\x00\x01",
    ]:
        assert beacon.handle(datagram, A, 0.0) == []
    assert beacon.counters["dropped"] == 6
    assert beacon.counters["beacon.empty"] == 1
    assert beacon.counters["beacon.unexpected_discoverreply"] == 1


def test_bad_source_addresses_never_raise() -> None:
    beacon = BeaconService()
    assert beacon.handle(discover(1), ("not-an-ip", 1), 0.0) == []
    assert beacon.handle(discover(1), (), 0.0) == []  # type: ignore[arg-type]
    assert beacon.handle(discover(1), (None, "x"), 0.0) == []  # type: ignore[arg-type]
    assert beacon.counters["dropped"] == 3


def test_table_is_bounded_least_recently_refreshed_evicted() -> None:
    beacon = BeaconService(max_nodes=2)
    beacon.handle(discover(1), A, 0.0)
    beacon.handle(discover(2), B, 1.0)
    beacon.handle(discover(1), A, 2.0)  # refresh 1
    beacon.handle(discover(3), A, 3.0)
    assert beacon.endpoint_of(2) is None and beacon.endpoint_of(1) == A
    assert beacon.known_nodes == 2


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.binary(max_size=64), st.sampled_from([A, B, ("::1", 5, 0, 0)]))
def test_fuzz_garbage_never_raises(datagram: bytes, source: tuple[object, ...]) -> None:
    beacon = BeaconService()
    beacon.handle(discover(2), B, 0.0)
    for payload, destination in beacon.handle(datagram, source, 1.0):
        assert isinstance(payload, bytes) and len(destination) == 2


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.integers(0, 7), st.binary(max_size=40))
def test_fuzz_valid_type_bytes_with_garbage_bodies(kind: int, body: bytes) -> None:
    beacon = BeaconService()
    beacon.handle(discover(2), B, 0.0)
    beacon.handle(bytes([kind]) + body, A, 1.0)
