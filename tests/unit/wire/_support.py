# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for the codec tests: vector loading, chunkings, the decode contract."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from pilotsock.errors import MalformedFrame

VECTORS_DIR = Path(__file__).resolve().parents[2] / "vectors"


def load_vectors(name: str) -> Any:
    """Load ``tests/vectors/<name>`` (JSON)."""
    return json.loads((VECTORS_DIR / name).read_text(encoding="utf-8"))


def buffer_kinds(data: bytes) -> Iterator[bytes | bytearray | memoryview]:
    """The same bytes as every buffer type a decoder is documented to accept."""
    yield data
    yield bytearray(data)
    yield memoryview(data)
    # a view that does not start at offset 0 of its buffer
    yield memoryview(b"\xAA" + data)[1:]


def decode_or_malformed(decode: Callable[[Any], Any], data: Any) -> Any:
    """Run ``decode``; return its value, or None if it raised ``MalformedFrame``.

    Any other exception propagates and fails the test: the codec contract is "a value or
    ``MalformedFrame``, nothing else" (``style.md`` §7).
    """
    try:
        return decode(data)
    except MalformedFrame as exc:
        assert isinstance(exc.reason, str) and exc.reason
        assert exc.errno is not None
        return None


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    """Split ``data`` at the (sorted, de-duplicated, clamped) offsets ``cuts``."""
    points = sorted({min(max(c, 0), len(data)) for c in cuts})
    chunks, start = [], 0
    for point in points:
        chunks.append(data[start:point])
        start = point
    chunks.append(data[start:])
    return chunks


def one_byte_chunks(data: bytes) -> list[bytes]:
    return [data[i:i + 1] for i in range(len(data))]


u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 0xFFFFFFFFFFFFFFFF)
cuts = st.lists(st.integers(0, 1 << 16), max_size=12)
