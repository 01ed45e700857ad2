# SPDX-License-Identifier: Apache-2.0
"""Local API framing ``[u32 length][msgpack map]`` between client and daemon."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pilotsock.errors import ErrorCode, MalformedFrame
from pilotsock.wire.local_api import (
    MAX_FRAME_BYTES,
    Event,
    FrameDecoder,
    Op,
    decode_body,
    encode_frame,
    error_reply,
    ok_reply,
)

from ._support import buffer_kinds, cuts, decode_or_malformed, load_vectors, one_byte_chunks, split_at

FRAMING = load_vectors("framing.json")

msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 63), (1 << 64) - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
frames = st.dictionaries(st.text(max_size=12), msgpack_values, max_size=6)


def feed_all(decoder: FrameDecoder, chunks: list[bytes]) -> list[dict]:
    out: list[dict] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out


def test_limits_and_names():
    assert MAX_FRAME_BYTES == 64 * 1024
    assert Op.CONNECT == "connect" and Event.ACCEPT == "accept"


@pytest.mark.parametrize("vector", FRAMING["local_api"], ids=lambda v: v["name"])
def test_vector(vector):
    raw = bytes.fromhex(vector["hex"])
    assert encode_frame(vector["message"]) == raw
    for data in buffer_kinds(raw[4:]):
        assert decode_body(data) == vector["message"]
    assert FrameDecoder().feed(raw) == [vector["message"]]


def test_enum_values_encode_as_plain_strings():
    raw = encode_frame({"op": Op.BIND, "port": 80})
    assert decode_body(raw[4:]) == {"op": "bind", "port": 80}


def test_replies():
    assert ok_reply(port=5) == {"ok": True, "port": 5}
    reply = error_reply(ErrorCode.REFUSED, "no listener")
    assert reply == {"ok": False, "code": 1, "detail": "no listener"}
    assert decode_body(encode_frame(reply)[4:]) == reply


def test_encode_rejects_oversized():
    with pytest.raises(ValueError):
        encode_frame({"data": bytes(MAX_FRAME_BYTES)})


def test_body_at_limit():
    overhead = 1 + 5 + 3  # fixmap(1) + fixstr "data" + bin16 header
    message = {"data": bytes(MAX_FRAME_BYTES - overhead)}
    raw = encode_frame(message)
    assert len(raw) - 4 == MAX_FRAME_BYTES
    assert FrameDecoder().feed(raw) == [message]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xc1",                                   # never-used msgpack byte
        b"\x81",                                   # map header, no entries
        b"\x90",                                   # array, not a map
        b"\xa3abc",                                # str, not a map
        b"\x80\x80",                               # extra data after the map
        b"\x81\x90\x01",                           # list as key (not allowed)
        b"\x81\x01\x01",                           # int as key (strict_map_key)
        b"\xdb\xff\xff\xff\xff",                   # str32 longer than the input
        b"\x91" * 5000,                            # deep nesting
        b"\x81\xa1k\xa2\xff\xfe",                  # invalid UTF-8 in a str
    ],
)
def test_body_malformed(body):
    with pytest.raises(MalformedFrame):
        decode_body(body)


def test_decoder_rejects_length_over_limit():
    with pytest.raises(MalformedFrame) as info:
        FrameDecoder().feed(struct.pack(">I", MAX_FRAME_BYTES + 1))
    assert info.value.reason == "local_api.too_long"


@settings(max_examples=200, deadline=None)
@given(frames)
def test_round_trip(message):
    raw = encode_frame(message)
    assert struct.unpack_from(">I", raw)[0] == len(raw) - 4
    assert decode_body(raw[4:]) == message
    assert FrameDecoder().feed(raw) == [message]


@settings(max_examples=100, deadline=None)
@given(st.lists(frames, min_size=1, max_size=5), cuts)
def test_chunking_whole_bytewise_random(messages, cut_points):
    stream = b"".join(encode_frame(m) for m in messages)
    assert FrameDecoder().feed(stream) == messages
    assert feed_all(FrameDecoder(), one_byte_chunks(stream)) == messages
    assert feed_all(FrameDecoder(), split_at(stream, cut_points)) == messages


@settings(max_examples=100, deadline=None)
@given(st.lists(frames, max_size=4), frames, st.data())
def test_chunking_trailing_partial(messages, last, data):
    stream = b"".join(encode_frame(m) for m in messages)
    last_raw = encode_frame(last)
    split = data.draw(st.integers(0, len(last_raw) - 1))
    for chunks in ([stream + last_raw[:split]], one_byte_chunks(stream + last_raw[:split])):
        decoder = FrameDecoder()
        assert feed_all(decoder, chunks) == messages
        assert decoder.buffered_bytes == split
        assert decoder.feed(last_raw[split:]) == [last]
        assert decoder.buffered_bytes == 0


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=100),
    msgpack_values.map(lambda v: msgpack.packb(v, use_bin_type=True)),
))
def test_fuzz_body(data):
    for view in buffer_kinds(data):
        result = decode_or_malformed(decode_body, view)
        assert result is None or isinstance(result, dict)


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=120),
    st.builds(lambda body, extra: struct.pack(">I", len(body)) + body + extra,
              st.binary(max_size=60), st.binary(max_size=20)),
), cuts)
def test_fuzz_stream(data, cut_points):
    for chunks in ([data], one_byte_chunks(data), split_at(data, cut_points)):
        decoder = FrameDecoder()
        try:
            for chunk in chunks:
                for message in decoder.feed(memoryview(chunk)):
                    assert isinstance(message, dict)
        except MalformedFrame:
            pass
