# SPDX-License-Identifier: Apache-2.0
"""Tunnel frames on the shared UDP socket: PILT, PILS, PILK, PILA, PILP (``wire.md`` §5–§7).

Where it sits: ring 1. UDP datagram -> ``classify_datagram`` -> ``decode_*`` -> tunnel sessions.

Layouts (all big-endian):

- ``PILT`` magic ‖ packet (plaintext; only with encryption explicitly off)
- ``PILS`` magic ‖ u32 sender ‖ 12-byte nonce (4-byte prefix ‖ u64 counter) ‖ ciphertext ‖ tag
- ``PILK`` magic ‖ u32 sender ‖ 32-byte X25519 public key
- ``PILA`` magic ‖ u32 sender ‖ 32 X25519 ‖ 32 Ed25519 ‖ 64 signature (bytes after 136 ignored)
- ``PILP`` magic [‖ u32 sender] (send 8 bytes, accept >= 4)
"""

from __future__ import annotations

import enum
import struct
from typing import NamedTuple

from pilotsock.errors import MalformedFrame

MAGIC_PILT = b"PILT"
MAGIC_PILS = b"PILS"
MAGIC_PILK = b"PILK"
MAGIC_PILA = b"PILA"
MAGIC_PILP = b"PILP"

BEACON_BYTE_LIMIT = 0x10  # a first byte below this is a beacon message (wire.md §5)
GCM_TAG_BYTES = 16
NONCE_BYTES = 12
X25519_KEY_BYTES = 32
ED25519_KEY_BYTES = 32
ED25519_SIGNATURE_BYTES = 64

# PILS prefix: 0 magic, 4 sender node, 8 nonce prefix, 12 nonce counter; ciphertext from 20
PILS_PREFIX = struct.Struct(">4sI4sQ")
PILS_OVERHEAD_BYTES = PILS_PREFIX.size + GCM_TAG_BYTES  # 36
NONCE = struct.Struct(">4sQ")
_NODE = struct.Struct(">I")
PILK_BYTES = 4 + 4 + X25519_KEY_BYTES  # 40
PILA_BYTES = 4 + 4 + X25519_KEY_BYTES + ED25519_KEY_BYTES + ED25519_SIGNATURE_BYTES  # 136
PILA_SIGNED_PREFIX = b"auth"


class FrameKind(enum.Enum):
    BEACON = "beacon"
    PILT = "PILT"
    PILS = "PILS"
    PILK = "PILK"
    PILA = "PILA"
    PILP = "PILP"


_KINDS = {
    MAGIC_PILT: FrameKind.PILT,
    MAGIC_PILS: FrameKind.PILS,
    MAGIC_PILK: FrameKind.PILK,
    MAGIC_PILA: FrameKind.PILA,
    MAGIC_PILP: FrameKind.PILP,
}


class SealedFrame(NamedTuple):
    """A PILS frame split into its parts; ``ciphertext`` includes the tag."""

    sender: int
    nonce: bytes
    nonce_prefix: bytes
    counter: int
    ciphertext: memoryview


class KeyExchange(NamedTuple):
    """A PILK (``identity_key``/``signature`` empty) or PILA frame."""

    sender: int
    x25519_public: bytes
    identity_key: bytes
    signature: bytes
    authenticated: bool


def classify_datagram(data: bytes | memoryview) -> FrameKind:
    """Say what a UDP payload is. Raises ``MalformedFrame`` for empty input or an unknown magic."""
    if len(data) == 0:
        raise MalformedFrame("udp.empty")
    if data[0] < BEACON_BYTE_LIMIT:
        return FrameKind.BEACON
    kind = _KINDS.get(bytes(data[:4]))
    if kind is None:
        raise MalformedFrame("tunnel.unknown_magic")
    return kind


def encode_plaintext(packet: bytes | memoryview) -> bytes:
    return MAGIC_PILT + bytes(packet)


def decode_plaintext(data: bytes | memoryview) -> memoryview:
    """Return the packet bytes of a PILT frame."""
    if len(data) < 4 + 34 or bytes(data[:4]) != MAGIC_PILT:
        raise MalformedFrame("tunnel.pilt_short")
    return memoryview(data)[4:]


def decode_sealed(data: bytes | memoryview) -> SealedFrame:
    """Split a PILS frame. Raises ``MalformedFrame`` when shorter than 36 bytes."""
    if len(data) < PILS_OVERHEAD_BYTES:
        raise MalformedFrame("tunnel.pils_short")
    magic, sender, prefix, counter = PILS_PREFIX.unpack_from(data, 0)
    if magic != MAGIC_PILS:
        raise MalformedFrame("tunnel.pils_magic")
    view = memoryview(data)
    return SealedFrame(sender, bytes(view[8:20]), prefix, counter, view[20:])


def encode_sealed_prefix(sender: int, nonce_prefix: bytes, counter: int) -> bytes:
    """The 20 bytes before the ciphertext of a PILS frame."""
    if len(nonce_prefix) != 4:  # struct "4s" would silently pad or truncate it
        raise ValueError("PILS nonce prefix must be 4 bytes")
    return PILS_PREFIX.pack(MAGIC_PILS, sender, nonce_prefix, counter)


def sealed_aad(sender: int) -> bytes:
    """AAD of a PILS frame: the 4-byte big-endian sender node ID (D01 generation)."""
    return _NODE.pack(sender)


def encode_key_exchange(sender: int, x25519_public: bytes) -> bytes:
    """PILK (unauthenticated)."""
    if len(x25519_public) != X25519_KEY_BYTES:
        raise ValueError("X25519 public key must be 32 bytes")
    return MAGIC_PILK + _NODE.pack(sender) + x25519_public


def pila_signed_message(sender: int, x25519_public: bytes) -> bytes:
    """The 40 bytes a PILA signature covers: ``b"auth" ‖ u32 sender ‖ X25519 public key``."""
    if len(x25519_public) != X25519_KEY_BYTES:
        raise ValueError("X25519 public key must be 32 bytes")
    return PILA_SIGNED_PREFIX + _NODE.pack(sender) + x25519_public


def encode_authenticated_key_exchange(
    sender: int, x25519_public: bytes, identity_key: bytes, signature: bytes
) -> bytes:
    """PILA."""
    if len(x25519_public) != X25519_KEY_BYTES or len(identity_key) != ED25519_KEY_BYTES:
        raise ValueError("keys must be 32 bytes")
    if len(signature) != ED25519_SIGNATURE_BYTES:
        raise ValueError("Ed25519 signature must be 64 bytes")
    return MAGIC_PILA + _NODE.pack(sender) + x25519_public + identity_key + signature


def decode_key_exchange(data: bytes | memoryview) -> KeyExchange:
    """Decode PILK or PILA; bytes after a PILA's 136 are ignored (capability bits of later Go)."""
    magic = bytes(data[:4])
    if magic == MAGIC_PILA:
        if len(data) < PILA_BYTES:
            raise MalformedFrame("tunnel.pila_short")
        raw = bytes(data[:PILA_BYTES])
        return KeyExchange(
            _NODE.unpack_from(raw, 4)[0], raw[8:40], raw[40:72], raw[72:136], True
        )
    if magic == MAGIC_PILK:
        if len(data) < PILK_BYTES:
            raise MalformedFrame("tunnel.pilk_short")
        raw = bytes(data[:PILK_BYTES])
        return KeyExchange(_NODE.unpack_from(raw, 4)[0], raw[8:40], b"", b"", False)
    raise MalformedFrame("tunnel.kx_magic")


def encode_punch(sender: int) -> bytes:
    """PILP in the D01 form (8 bytes)."""
    return MAGIC_PILP + _NODE.pack(sender)


def decode_punch(data: bytes | memoryview) -> int | None:
    """Return the sender of a PILP, or None for Go's bare 4-byte form."""
    if len(data) < 4 or bytes(data[:4]) != MAGIC_PILP:
        raise MalformedFrame("tunnel.pilp_magic")
    if len(data) >= 8:
        return int(_NODE.unpack_from(data, 4)[0])
    return None
