# SPDX-License-Identifier: Apache-2.0
"""32-bit serial-number arithmetic (RFC 1982) for sequence and acknowledgment numbers.

Where it sits: ring 2 helper. Every sequence comparison in the transport goes through here
(transport.md §1); Go's SACK code is not wrap-safe, ours is.
"""

from __future__ import annotations

SEQ_MASK = 0xFFFFFFFF
_HALF = 0x80000000


def seq_add(a: int, n: int) -> int:
    return (a + n) & SEQ_MASK


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` in the range [-2^31, 2^31)."""
    d = (a - b) & SEQ_MASK
    return d - 0x100000000 if d >= _HALF else d


def seq_lt(a: int, b: int) -> bool:
    return 0 < ((b - a) & SEQ_MASK) < _HALF


def seq_le(a: int, b: int) -> bool:
    return a == b or 0 < ((b - a) & SEQ_MASK) < _HALF


def seq_gt(a: int, b: int) -> bool:
    return 0 < ((a - b) & SEQ_MASK) < _HALF


def seq_ge(a: int, b: int) -> bool:
    return a == b or 0 < ((a - b) & SEQ_MASK) < _HALF
