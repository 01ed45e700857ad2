# SPDX-License-Identifier: Apache-2.0
"""The 34-byte Pilot packet header with its CRC-32 (``wire.md`` §4, D01 §6).

Where it sits: ring 1 (codec). tunnel plaintext -> ``decode_packet`` -> transport machines;
machines -> ``encode_packet`` -> tunnel encryption.

Integrity (lengths, CRC) is checked here; sanity (version, flag combinations, ports) is left to the
caller so that it can count each drop reason separately.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass

from pilotsock.errors import MalformedFrame

try:  # optional fast CRC (performance.md §2); identical results to zlib.crc32
    from isal.isal_zlib import crc32 as _crc32  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    _crc32 = zlib.crc32

VERSION = 1

# off 0 ver|flags, 1 protocol, 2 payload length, 4 src net, 6 src node, 10 dst net, 12 dst node,
# 16 src port, 18 dst port, 20 seq, 24 ack, 28 window (4096-byte units), 30 checksum
PACKET_HEADER = struct.Struct(">BBHHIHIHHIIHI")
HEADER_BYTES = PACKET_HEADER.size  # 34
CHECKSUM_OFFSET = 30
MAX_PAYLOAD_BYTES = 0xFFFF
_ZERO_CHECKSUM = b"\x00\x00\x00\x00"
_CHECKSUM = struct.Struct(">I")


class Flag(enum.IntFlag):
    SYN = 0x1
    ACK = 0x2
    FIN = 0x4
    RST = 0x8


class Protocol(enum.IntEnum):
    STREAM = 0x01
    DATAGRAM = 0x02
    CONTROL = 0x03


@dataclass(slots=True)
class Packet:
    """A decoded packet. ``payload`` is a memoryview into the received buffer when decoded."""

    flags: int
    protocol: int
    src_network: int
    src_node: int
    dst_network: int
    dst_node: int
    src_port: int
    dst_port: int
    seq: int
    ack: int
    window_units: int
    payload: bytes | memoryview = b""
    version: int = VERSION


def packet_checksum(header_without_checksum: bytes | memoryview, payload: bytes | memoryview) -> int:
    """CRC-32/IEEE over the first 30 header bytes, four zero bytes, then the payload."""
    crc = _crc32(header_without_checksum)
    crc = _crc32(_ZERO_CHECKSUM, crc)
    return int(_crc32(payload, crc)) & 0xFFFFFFFF


def encode_packet_into(
    buffer: bytearray | memoryview,
    offset: int,
    flags: int,
    protocol: int,
    src_network: int,
    src_node: int,
    dst_network: int,
    dst_node: int,
    src_port: int,
    dst_port: int,
    seq: int,
    ack: int,
    window_units: int,
    payload: bytes | memoryview,
) -> int:
    """Write header and payload into ``buffer`` at ``offset``; return the bytes written."""
    length = len(payload)
    if length > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload of {length} bytes exceeds {MAX_PAYLOAD_BYTES}")
    view = memoryview(buffer)
    PACKET_HEADER.pack_into(
        view, offset, (VERSION << 4) | flags, protocol, length, src_network, src_node,
        dst_network, dst_node, src_port, dst_port, seq, ack, window_units, 0,
    )
    end = offset + HEADER_BYTES + length
    view[offset + HEADER_BYTES:end] = payload
    crc = _crc32(view[offset:end]) & 0xFFFFFFFF  # checksum field is still zero here
    _CHECKSUM.pack_into(view, offset + CHECKSUM_OFFSET, crc)
    return HEADER_BYTES + length


def encode_packet(packet: Packet) -> bytes:
    """Marshal ``packet`` (header with CRC, then payload). Raises ``ValueError`` if too large."""
    if len(packet.payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload of {len(packet.payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    buffer = bytearray(HEADER_BYTES + len(packet.payload))
    PACKET_HEADER.pack_into(
        buffer, 0, ((packet.version & 0xF) << 4) | (packet.flags & 0xF), packet.protocol,
        len(packet.payload), packet.src_network, packet.src_node, packet.dst_network,
        packet.dst_node, packet.src_port, packet.dst_port, packet.seq, packet.ack,
        packet.window_units, 0,
    )
    buffer[HEADER_BYTES:] = packet.payload
    _CHECKSUM.pack_into(buffer, CHECKSUM_OFFSET, _crc32(buffer) & 0xFFFFFFFF)
    return bytes(buffer)


def decode_packet(data: bytes | bytearray | memoryview) -> Packet:
    """Decode one packet; bytes after ``34 + payload length`` are ignored (not checksummed).

    Raises:
        MalformedFrame: too short, truncated payload, or checksum mismatch.
    """
    view = memoryview(data)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    if len(view) < HEADER_BYTES:
        raise MalformedFrame("packet.short")
    (first, protocol, length, src_network, src_node, dst_network, dst_node, src_port, dst_port,
     seq, ack, window_units, checksum) = PACKET_HEADER.unpack_from(view, 0)
    end = HEADER_BYTES + length
    if len(view) < end:
        raise MalformedFrame("packet.truncated")
    payload = view[HEADER_BYTES:end]
    if packet_checksum(view[:CHECKSUM_OFFSET], payload) != checksum:
        raise MalformedFrame("packet.bad_crc")
    return Packet(
        first & 0x0F, protocol, src_network, src_node, dst_network, dst_node, src_port, dst_port,
        seq, ack, window_units, payload, first >> 4,
    )
