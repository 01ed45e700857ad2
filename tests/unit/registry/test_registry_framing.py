# SPDX-License-Identifier: Apache-2.0
"""Chunking tests for the server-side registry framing (wire.md §10.1, style.md §7)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pilotsock.errors import MalformedFrame
from pilotsock.wire.registry_messages import RegistryFrameDecoder, encode_registry_message

MESSAGES: list[dict[str, Any]] = [
    {"type": "register", "listen_addr": "0.0.0.0:4000", "public_key": "A" * 43 + "="},
    {"type": "lookup", "node_id": 5},
    {"type": "set_hostname", "node_id": 5, "hostname": "h\u00e9llo", "signature": "x" * 88},
    {"type": "beacon_list"},
]
STREAM = b"".join(encode_registry_message(m) for m in MESSAGES)


def _feed_in_chunks(data: bytes, sizes: list[int]) -> tuple[list[dict[str, Any]], int]:
    decoder = RegistryFrameDecoder()
    out: list[dict[str, Any]] = []
    position = 0
    for size in sizes:
        out += decoder.feed(data[position : position + size])
        position += size
    out += decoder.feed(data[position:])
    return out, decoder.buffered_bytes


def test_whole() -> None:
    assert _feed_in_chunks(STREAM, []) == (MESSAGES, 0)


def test_byte_by_byte() -> None:
    assert _feed_in_chunks(STREAM, [1] * len(STREAM)) == (MESSAGES, 0)


def test_trailing_partial_frame_stays_buffered() -> None:
    messages, buffered = _feed_in_chunks(STREAM + b'\x00\x00\x00\x10{"ty', [])
    assert messages == MESSAGES and buffered == 8


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(st.integers(1, 64), max_size=60))
def test_any_chunking(sizes: list[int]) -> None:
    assert _feed_in_chunks(STREAM, sizes)[0] == MESSAGES


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00\x10\x00\x01", "registry.too_long"),
        (b"\xff\xff\xff\xff", "registry.too_long"),
        (b"\x00\x00\x00\x03abc", "registry.bad_json"),
        (b"\x00\x00\x00\x02[]", "registry.not_object"),
        (b"\x00\x00\x00\x02{}", "registry.no_type"),
        (b"\x00\x00\x00\x02\xff\xfe", "registry.bad_json"),
    ],
)
def test_bad_frames_raise_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedFrame) as caught:
        RegistryFrameDecoder().feed(data)
    assert caught.value.reason == reason


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=200))
def test_garbage_only_raises_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedFrame):
        RegistryFrameDecoder().feed(data)
