# SPDX-License-Identifier: Apache-2.0
"""Beacon messages 0x01–0x07 (wire.md §9)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pilotsock.errors import MalformedFrame
from pilotsock.wire import beacon_messages as bm
from pilotsock.wire.beacon_messages import (
    BeaconType,
    Discover,
    DiscoverReply,
    PunchCommand,
    PunchRequest,
    Relay,
    RelayDeliver,
    Sync,
    decode_beacon,
    encode_beacon,
)
from pilotsock.wire.tunnel_frames import FrameKind, classify_datagram

from ._support import buffer_kinds, decode_or_malformed, load_vectors, u16, u32

BEACON_VECTORS = load_vectors("beacon.json")["vectors"]


def message_from_vector(vector: dict) -> bm.BeaconMessage:
    cls = getattr(bm, vector["type"])
    fields = dict(vector["fields"])
    if "inner" in fields:
        fields["inner"] = bytes.fromhex(fields["inner"])
    if "node_ids" in fields:
        fields["node_ids"] = tuple(fields["node_ids"])
    return cls(**fields)


# IPv4-mapped IPv6 addresses are deliberately decoded as IPv4 (wire.md §9 "IPv4 or IPv4-mapped").
hosts = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).filter(lambda a: a.ipv4_mapped is None).map(str),
)
messages = st.one_of(
    st.builds(Discover, u32),
    st.builds(DiscoverReply, hosts, u16),
    st.builds(PunchRequest, u32, u32),
    st.builds(PunchCommand, hosts, u16),
    st.builds(Relay, u32, u32, st.binary(max_size=200)),
    st.builds(RelayDeliver, u32, st.binary(max_size=200)),
    st.builds(Sync, u32, st.lists(u32, max_size=40).map(tuple)),
)


TYPE_CODES = {Discover: 0x01, DiscoverReply: 0x02, PunchRequest: 0x03, PunchCommand: 0x04,
              Relay: 0x05, RelayDeliver: 0x06, Sync: 0x07}


def test_type_codes():
    assert [int(t) for t in BeaconType] == [1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize("vector", BEACON_VECTORS, ids=lambda v: v["name"])
def test_vector_encode(vector):
    assert encode_beacon(message_from_vector(vector)).hex() == vector["hex"]


@pytest.mark.parametrize("vector", BEACON_VECTORS, ids=lambda v: v["name"])
def test_vector_decode(vector):
    raw = bytes.fromhex(vector["hex"])
    for data in buffer_kinds(raw):
        assert decode_beacon(data) == message_from_vector(vector)
    # every beacon message starts with a byte < 0x10 on the shared UDP socket (wire.md §5)
    assert classify_datagram(raw) is FrameKind.BEACON


def test_ipv4_mapped_address_decodes_as_ipv4():
    raw = b"\x02\x10" + ipaddress.IPv6Address("::ffff:192.0.2.1").packed + b"\x23\x29"
    assert decode_beacon(raw) == DiscoverReply("192.0.2.1", 9001)
    assert encode_beacon(DiscoverReply("::ffff:192.0.2.1", 9001)) == raw


def test_relay_inner_is_bytes():
    message = decode_beacon(memoryview(b"\x05\x00\x00\x00\x01\x00\x00\x00\x02PILS"))
    assert isinstance(message, Relay) and type(message.inner) is bytes
    assert message.inner == b"PILS"


def test_empty_sync_and_relay():
    assert decode_beacon(encode_beacon(Sync(3, ()))) == Sync(3, ())
    assert decode_beacon(b"\x05" + bytes(8)) == Relay(0, 0, b"")
    assert decode_beacon(b"\x06" + bytes(4)) == RelayDeliver(0, b"")


def test_stun_reply_minimum():
    """wire.md §9: a STUN reply must start with 0x02 and be >= 4 bytes; shorter is malformed."""
    with pytest.raises(MalformedFrame):
        decode_beacon(b"\x02\x04\x7f\x00")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x08",
        b"\x0f" + bytes(10),
        b"\x01\x00\x00\x00",                       # discover short
        b"\x02",                                   # no ip
        b"\x02\x05" + bytes(7),                    # ip length 5
        b"\x02\x00\x00\x00",                       # ip length 0
        b"\x02\x04\x7f\x00\x00",                   # ip truncated
        b"\x02\x04\x7f\x00\x00\x01",               # port missing
        b"\x02\x04\x7f\x00\x00\x01\x23",           # port half
        b"\x02\x10" + bytes(17),                   # v6 port missing
        b"\x03" + bytes(7),                        # punch request short
        b"\x04\x04\x01\x02\x03",                   # punch command truncated
        b"\x05" + bytes(7),                        # relay short
        b"\x06" + bytes(3),                        # relay deliver short
        b"\x07" + bytes(5),                        # sync short
        b"\x07\x00\x00\x00\x01\x00\x02" + bytes(7),  # sync truncated (2 ids need 8 bytes)
    ],
)
def test_malformed(data):
    with pytest.raises(MalformedFrame):
        decode_beacon(data)


def test_encode_rejects_non_messages_and_huge_sync():
    with pytest.raises(TypeError):
        encode_beacon(("not", "a message"))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        encode_beacon(Sync(1, tuple(range(0x10000))))


@settings(max_examples=300, deadline=None)
@given(messages)
def test_round_trip(message):
    raw = encode_beacon(message)
    assert raw[0] == TYPE_CODES[type(message)]
    decoded = decode_beacon(raw)
    assert decoded == message
    assert type(decoded) is type(message)
    assert encode_beacon(decoded) == raw


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.builds(Discover, u32), st.builds(DiscoverReply, hosts, u16),
                 st.builds(PunchRequest, u32, u32), st.builds(PunchCommand, hosts, u16),
                 st.builds(Sync, u32, st.lists(u32, max_size=10).map(tuple))),
       st.binary(min_size=1, max_size=16))
def test_fixed_layout_messages_ignore_trailing_bytes(message, trailing):
    assert decode_beacon(encode_beacon(message) + trailing) == message


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.binary(max_size=80),
    st.builds(lambda kind, rest: bytes((kind,)) + rest, st.integers(0, 0x0F), st.binary(max_size=80)),
    st.builds(lambda kind, length, rest: bytes((kind, length)) + rest,
              st.sampled_from([2, 4]), st.sampled_from([0, 4, 16, 255]), st.binary(max_size=20)),
    st.builds(lambda count, rest: b"\x07\x00\x00\x00\x01" + count.to_bytes(2, "big") + rest,
              u16, st.binary(max_size=64)),
))
def test_fuzz(data):
    for view in buffer_kinds(data):
        decode_or_malformed(decode_beacon, view)
