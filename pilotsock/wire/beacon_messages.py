# SPDX-License-Identifier: Apache-2.0
"""Beacon messages 0x01–0x07 (``wire.md`` §9): NAT discovery, hole punching, relay, gossip.

Where it sits: ring 1. Used by the daemon's UDP endpoint (first byte < 0x10) and by the beacon
server. IP fields are ``[u8 len][len bytes]`` with len 4 or 16; ports are u16.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from typing import NamedTuple, Union

from pilotsock.errors import MalformedFrame

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_TWO_U32 = struct.Struct(">II")
_SYNC_HEAD = struct.Struct(">IH")


class BeaconType(enum.IntEnum):
    DISCOVER = 0x01
    DISCOVER_REPLY = 0x02
    PUNCH_REQUEST = 0x03
    PUNCH_COMMAND = 0x04
    RELAY = 0x05
    RELAY_DELIVER = 0x06
    SYNC = 0x07


class Discover(NamedTuple):
    node_id: int


class DiscoverReply(NamedTuple):
    host: str
    port: int


class PunchRequest(NamedTuple):
    requester: int
    target: int


class PunchCommand(NamedTuple):
    host: str
    port: int


class Relay(NamedTuple):
    sender: int
    destination: int
    inner: bytes


class RelayDeliver(NamedTuple):
    sender: int
    inner: bytes


class Sync(NamedTuple):
    beacon_id: int
    node_ids: tuple[int, ...]


BeaconMessage = Union[Discover, DiscoverReply, PunchRequest, PunchCommand, Relay, RelayDeliver, Sync]


def _encode_ip(host: str) -> bytes:
    address = ipaddress.ip_address(host)
    packed = address.packed
    return bytes((len(packed),)) + packed


def _decode_ip(data: bytes, offset: int) -> tuple[str, int]:
    if offset >= len(data):
        raise MalformedFrame("beacon.ip_missing")
    length = data[offset]
    if length not in (4, 16):
        raise MalformedFrame("beacon.ip_length")
    end = offset + 1 + length
    if end > len(data):
        raise MalformedFrame("beacon.ip_truncated")
    address = ipaddress.ip_address(data[offset + 1:end])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address), end


def _decode_endpoint(data: bytes) -> tuple[str, int]:
    host, offset = _decode_ip(data, 1)
    if offset + 2 > len(data):
        raise MalformedFrame("beacon.port_missing")
    return host, _U16.unpack_from(data, offset)[0]


def encode_beacon(message: BeaconMessage) -> bytes:
    """Encode any beacon message."""
    if isinstance(message, Discover):
        return bytes((BeaconType.DISCOVER,)) + _U32.pack(message.node_id)
    if isinstance(message, DiscoverReply):
        return bytes((BeaconType.DISCOVER_REPLY,)) + _encode_ip(message.host) + _U16.pack(message.port)
    if isinstance(message, PunchRequest):
        return bytes((BeaconType.PUNCH_REQUEST,)) + _TWO_U32.pack(message.requester, message.target)
    if isinstance(message, PunchCommand):
        return bytes((BeaconType.PUNCH_COMMAND,)) + _encode_ip(message.host) + _U16.pack(message.port)
    if isinstance(message, Relay):
        return (bytes((BeaconType.RELAY,)) + _TWO_U32.pack(message.sender, message.destination)
                + bytes(message.inner))
    if isinstance(message, RelayDeliver):
        return bytes((BeaconType.RELAY_DELIVER,)) + _U32.pack(message.sender) + bytes(message.inner)
    if isinstance(message, Sync):
        if len(message.node_ids) > 0xFFFF:
            raise ValueError("a Sync message carries at most 65535 node IDs")
        return (bytes((BeaconType.SYNC,)) + _SYNC_HEAD.pack(message.beacon_id, len(message.node_ids))
                + b"".join(_U32.pack(n) for n in message.node_ids))
    raise TypeError(f"not a beacon message: {message!r}")


def decode_beacon(data: bytes | memoryview) -> BeaconMessage:
    """Decode a beacon message. Raises only ``MalformedFrame``."""
    raw = bytes(data)
    if not raw:
        raise MalformedFrame("beacon.empty")
    kind = raw[0]
    if kind == BeaconType.DISCOVER:
        if len(raw) < 5:
            raise MalformedFrame("beacon.discover_short")
        return Discover(_U32.unpack_from(raw, 1)[0])
    if kind == BeaconType.DISCOVER_REPLY:
        return DiscoverReply(*_decode_endpoint(raw))
    if kind == BeaconType.PUNCH_REQUEST:
        if len(raw) < 9:
            raise MalformedFrame("beacon.punch_request_short")
        return PunchRequest(*_TWO_U32.unpack_from(raw, 1))
    if kind == BeaconType.PUNCH_COMMAND:
        return PunchCommand(*_decode_endpoint(raw))
    if kind == BeaconType.RELAY:
        if len(raw) < 9:
            raise MalformedFrame("beacon.relay_short")
        sender, destination = _TWO_U32.unpack_from(raw, 1)
        return Relay(sender, destination, raw[9:])
    if kind == BeaconType.RELAY_DELIVER:
        if len(raw) < 5:
            raise MalformedFrame("beacon.relay_deliver_short")
        return RelayDeliver(_U32.unpack_from(raw, 1)[0], raw[5:])
    if kind == BeaconType.SYNC:
        if len(raw) < 7:
            raise MalformedFrame("beacon.sync_short")
        beacon_id, count = _SYNC_HEAD.unpack_from(raw, 1)
        if len(raw) < 7 + 4 * count:
            raise MalformedFrame("beacon.sync_truncated")
        return Sync(beacon_id, struct.unpack_from(f">{count}I", raw, 7))
    raise MalformedFrame("beacon.unknown_type")
