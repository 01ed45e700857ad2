# SPDX-License-Identifier: Apache-2.0
"""Packet header codec (wire.md §4): golden vectors, round trips, CRC, decoder contract."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pilotsock.errors import MalformedFrame
from pilotsock.wire.header import (
    CHECKSUM_OFFSET,
    HEADER_BYTES,
    MAX_PAYLOAD_BYTES,
    PACKET_HEADER,
    VERSION,
    Flag,
    Packet,
    Protocol,
    decode_packet,
    encode_packet,
    encode_packet_into,
    packet_checksum,
)

from ._support import buffer_kinds, decode_or_malformed, load_vectors, u16, u32

PACKET_VECTORS = load_vectors("packets.json")["vectors"]
FIELDS = ("flags", "protocol", "src_network", "src_node", "dst_network", "dst_node", "src_port",
          "dst_port", "seq", "ack", "window_units")


def packet_from_vector(vector: dict) -> Packet:
    return Packet(*(vector[name] for name in FIELDS), bytes.fromhex(vector["payload_hex"]),
                  vector["version"])


def packet_strategy(version: st.SearchStrategy[int]) -> st.SearchStrategy[Packet]:
    return st.builds(
        Packet,
        flags=st.integers(0, 15),
        protocol=st.integers(0, 255),
        src_network=u16,
        src_node=u32,
        dst_network=u16,
        dst_node=u32,
        src_port=u16,
        dst_port=u16,
        seq=u32,
        ack=u32,
        window_units=u16,
        payload=st.binary(max_size=1500),
        version=version,
    )


packets = packet_strategy(st.integers(0, 15))
v1_packets = packet_strategy(st.just(VERSION))


# ---------------------------------------------------------------------------------------------
# Constants and layout
# ---------------------------------------------------------------------------------------------

def test_layout_constants():
    assert PACKET_HEADER.format == ">BBHHIHIHHIIHI"
    assert HEADER_BYTES == 34
    assert CHECKSUM_OFFSET == 30
    assert VERSION == 1
    assert MAX_PAYLOAD_BYTES == 65535


def test_flag_and_protocol_values():
    assert (Flag.SYN, Flag.ACK, Flag.FIN, Flag.RST) == (0x1, 0x2, 0x4, 0x8)
    assert (Protocol.STREAM, Protocol.DATAGRAM, Protocol.CONTROL) == (0x01, 0x02, 0x03)


# ---------------------------------------------------------------------------------------------
# Golden vectors: wire.md §17 (D01 App. B) and the Go golden-corpus shapes
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("vector", PACKET_VECTORS, ids=lambda v: v["name"])
def test_vector_encode(vector):
    assert encode_packet(packet_from_vector(vector)).hex() == vector["hex"]


@pytest.mark.parametrize("vector", PACKET_VECTORS, ids=lambda v: v["name"])
def test_vector_encode_into(vector):
    p = packet_from_vector(vector)
    buffer = bytearray(b"\xEE" * (7 + HEADER_BYTES + len(p.payload) + 5))
    written = encode_packet_into(buffer, 7, p.flags, p.protocol, p.src_network, p.src_node,
                                 p.dst_network, p.dst_node, p.src_port, p.dst_port, p.seq, p.ack,
                                 p.window_units, p.payload)
    assert written == len(bytes.fromhex(vector["hex"]))
    assert buffer[7:7 + written].hex() == vector["hex"]
    assert buffer[:7] == b"\xEE" * 7 and buffer[7 + written:] == b"\xEE" * 5


@pytest.mark.parametrize("vector", PACKET_VECTORS, ids=lambda v: v["name"])
def test_vector_decode(vector):
    raw = bytes.fromhex(vector["hex"])
    for data in buffer_kinds(raw):
        assert decode_packet(data) == packet_from_vector(vector)


def test_spec17_syn_worked_values():
    """The worked values of D01 App. B quoted in wire.md §4."""
    raw = bytes.fromhex(PACKET_VECTORS[0]["hex"])
    assert len(raw) == 34
    assert raw[0] == 0x11
    assert raw[16:18] == b"\xc0\x00" and raw[18:20] == b"\x03\xe8"
    assert raw[28:30] == b"\x02\x00"
    p = decode_packet(raw)
    assert (p.version, p.flags, p.protocol) == (1, Flag.SYN, Protocol.STREAM)
    assert (p.seq, p.ack, p.window_units, bytes(p.payload)) == (0, 0, 512, b"")


def test_spec17_data_worked_values():
    raw = bytes.fromhex(PACKET_VECTORS[1]["hex"])
    assert len(raw) == 39
    assert raw[0] == 0x12 and raw[2:4] == b"\x00\x05" and raw[28:30] == b"\x01\xf6"
    p = decode_packet(raw)
    assert (p.flags, p.seq, p.ack, p.window_units, bytes(p.payload)) == (Flag.ACK, 1, 1, 502, b"hello")


@pytest.mark.parametrize("vector", PACKET_VECTORS, ids=lambda v: v["name"])
def test_vector_checksum_is_zlib_crc32_with_zeroed_field(vector):
    raw = bytes.fromhex(vector["hex"])
    zeroed = raw[:CHECKSUM_OFFSET] + b"\0\0\0\0" + raw[HEADER_BYTES:]
    assert struct.unpack_from(">I", raw, CHECKSUM_OFFSET)[0] == zlib.crc32(zeroed)
    assert packet_checksum(raw[:CHECKSUM_OFFSET], raw[HEADER_BYTES:]) == zlib.crc32(zeroed)


def test_golden_corpus_shapes():
    by_name = {v["name"]: decode_packet(bytes.fromhex(v["hex"])) for v in PACKET_VECTORS}
    assert by_name["corpus_syn"].flags == Flag.SYN and by_name["corpus_syn"].seq == 100
    data = by_name["corpus_data"]
    assert (data.flags, data.seq, data.ack, bytes(data.payload)) == (Flag.ACK, 101, 200, b"hello")
    fin = by_name["corpus_fin_ack"]
    assert fin.flags == Flag.FIN | Flag.ACK and (fin.seq, fin.ack) == (200, 101)
    assert by_name["corpus_rst"].flags == Flag.RST and by_name["corpus_rst"].seq == 300
    datagram = by_name["corpus_datagram"]
    assert datagram.protocol == Protocol.DATAGRAM and len(datagram.payload) == 12


# ---------------------------------------------------------------------------------------------
# Decoding details
# ---------------------------------------------------------------------------------------------

def test_trailing_bytes_are_ignored_and_not_checksummed():
    raw = bytes.fromhex(PACKET_VECTORS[1]["hex"])
    p = decode_packet(raw + b"trailing garbage")
    assert bytes(p.payload) == b"hello"


def test_payload_is_a_view_of_the_input():
    raw = bytearray.fromhex(PACKET_VECTORS[1]["hex"])
    p = decode_packet(raw)
    assert isinstance(p.payload, memoryview)
    assert p.payload.obj is raw


def test_version_is_reported_not_checked():
    """Version checking is the caller's job (so it can count the drop); the codec reports it."""
    for version in (0, 2, 15):
        raw = encode_packet(Packet(Flag.SYN, Protocol.STREAM, 0, 1, 0, 2, 1, 2, 0, 0, 0, b"", version))
        assert raw[0] >> 4 == version
        assert decode_packet(raw).version == version


@pytest.mark.parametrize("length", range(HEADER_BYTES))
def test_short_input_is_malformed(length):
    raw = bytes.fromhex(PACKET_VECTORS[0]["hex"])
    with pytest.raises(MalformedFrame) as info:
        decode_packet(raw[:length])
    assert info.value.reason == "packet.short"


def test_truncated_payload_is_malformed():
    raw = bytes.fromhex(PACKET_VECTORS[1]["hex"])
    with pytest.raises(MalformedFrame) as info:
        decode_packet(raw[:-1])
    assert info.value.reason == "packet.truncated"


def test_bad_crc_is_malformed():
    raw = bytearray.fromhex(PACKET_VECTORS[1]["hex"])
    raw[-1] ^= 0x01
    with pytest.raises(MalformedFrame) as info:
        decode_packet(raw)
    assert info.value.reason == "packet.bad_crc"


def test_encoders_reject_oversized_payload():
    big = bytes(MAX_PAYLOAD_BYTES + 1)
    with pytest.raises(ValueError):
        encode_packet(Packet(0, 2, 0, 1, 0, 2, 0, 0, 0, 0, 0, big))
    with pytest.raises(ValueError):
        encode_packet_into(bytearray(HEADER_BYTES + len(big)), 0, 0, 2, 0, 1, 0, 2, 0, 0, 0, 0, 0, big)


def test_maximum_payload_round_trips():
    payload = bytes(range(256)) * 255 + bytes(range(255))
    assert len(payload) == MAX_PAYLOAD_BYTES
    raw = encode_packet(Packet(Flag.ACK, Protocol.STREAM, 0, 1, 0, 2, 3, 4, 5, 6, 7, payload))
    assert bytes(decode_packet(raw).payload) == payload


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(packets, st.binary(max_size=16))
def test_round_trip(packet, trailing):
    raw = encode_packet(packet)
    assert len(raw) == HEADER_BYTES + len(packet.payload)
    assert decode_packet(raw) == packet
    assert decode_packet(raw + trailing) == packet


@settings(max_examples=100, deadline=None)
@given(v1_packets, st.integers(0, 64))
def test_encode_into_matches_encode(packet, offset):
    buffer = bytearray(offset + HEADER_BYTES + len(packet.payload))
    written = encode_packet_into(buffer, offset, packet.flags, packet.protocol, packet.src_network,
                                 packet.src_node, packet.dst_network, packet.dst_node,
                                 packet.src_port, packet.dst_port, packet.seq, packet.ack,
                                 packet.window_units, packet.payload)
    assert bytes(buffer[offset:offset + written]) == encode_packet(packet)


@settings(max_examples=200, deadline=None)
@given(packets, st.data())
def test_bit_flips_are_detected(packet, data):
    """CRC-32 detects every error of weight <= 3 in frames this size (Hamming distance 4)."""
    raw = bytearray(encode_packet(packet))
    positions = data.draw(st.sets(st.integers(0, len(raw) * 8 - 1), min_size=1, max_size=3))
    for bit in positions:
        raw[bit // 8] ^= 0x80 >> (bit % 8)
    with pytest.raises(MalformedFrame):
        decode_packet(bytes(raw))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_arbitrary_bytes(data):
    for view in buffer_kinds(data):
        decode_or_malformed(decode_packet, view)


@settings(max_examples=200, deadline=None)
@given(packets, st.binary(min_size=0, max_size=40), st.integers(0, 0xFFFF))
def test_fuzz_plausible_headers(packet, tail, length):
    """Valid-looking header with a lying length and random tail: value or MalformedFrame."""
    raw = bytearray(encode_packet(packet)[:HEADER_BYTES])
    struct.pack_into(">H", raw, 2, length)
    decode_or_malformed(decode_packet, bytes(raw) + tail)
