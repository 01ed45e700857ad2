# SPDX-License-Identifier: Apache-2.0
"""In-band SACK payload: ``b"SACK" ‖ u8 n ‖ n × (u32 left, u32 right)`` (``transport.md`` §5).

Where it sits: ring 1. Carried in the payload of an ACK-flagged segment; a payload that parses as
SACK is never delivered as data (Go cannot tell the two apart either).
"""

from __future__ import annotations

import struct

from pilotsock.errors import MalformedFrame

SACK_MAGIC = b"SACK"
MAX_SACK_BLOCKS = 4
SACK_BLOCK = struct.Struct(">II")
_HEADER_BYTES = 5


def encode_sack(blocks: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> bytes:
    """Encode 1–4 blocks ``(left, right)`` with ``right`` exclusive."""
    count = len(blocks)
    if not 1 <= count <= MAX_SACK_BLOCKS:
        raise ValueError(f"a SACK payload carries 1-{MAX_SACK_BLOCKS} blocks, got {count}")
    parts = [SACK_MAGIC, bytes((count,))]
    for left, right in blocks:
        parts.append(SACK_BLOCK.pack(left & 0xFFFFFFFF, right & 0xFFFFFFFF))
    return b"".join(parts)


def is_sack_payload(payload: bytes | memoryview) -> bool:
    """True if Go (and we) would take ``payload`` as SACK rather than data."""
    if len(payload) < _HEADER_BYTES or bytes(payload[:4]) != SACK_MAGIC:
        return False
    count = payload[4]
    return 1 <= count <= MAX_SACK_BLOCKS and len(payload) >= _HEADER_BYTES + 8 * count


def decode_sack(payload: bytes | memoryview) -> list[tuple[int, int]]:
    """Decode a SACK payload (trailing bytes ignored).

    Raises:
        MalformedFrame: not a SACK payload by the rules above.
    """
    if not is_sack_payload(payload):
        raise MalformedFrame("sack.invalid")
    count = payload[4]
    return [SACK_BLOCK.unpack_from(payload, _HEADER_BYTES + 8 * i) for i in range(count)]
