# SPDX-License-Identifier: Apache-2.0
"""Registry framing ``[u32 length][JSON]`` and signature challenges (wire.md §10.1–§10.2)."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pilotsock.errors import MalformedFrame
from pilotsock.wire.registry_messages import (
    GENERIC_ERROR,
    MAX_FRAME_BYTES,
    RegistryFrameDecoder,
    challenge_node,
    challenge_pair,
    challenge_resolve,
    decode_registry_body,
    encode_registry_message,
    is_error,
)

from ._support import buffer_kinds, cuts, decode_or_malformed, load_vectors, one_byte_chunks, split_at

FRAMING = load_vectors("framing.json")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 64), 1 << 64)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
registry_messages = st.builds(
    lambda kind, rest: {"type": kind, **{k: v for k, v in rest.items() if k != "type"}},
    st.text(max_size=24),
    st.dictionaries(st.text(max_size=12), json_values, max_size=5),
)


def feed_all(decoder: RegistryFrameDecoder, chunks: list[bytes]) -> list[dict]:
    out: list[dict] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out


# ---------------------------------------------------------------------------------------------
# Vectors
# ---------------------------------------------------------------------------------------------

def test_limits():
    assert MAX_FRAME_BYTES == 1048576
    assert GENERIC_ERROR == "request failed"


@pytest.mark.parametrize("vector", FRAMING["registry"], ids=lambda v: v["name"])
def test_vector_decode(vector):
    raw = bytes.fromhex(vector["hex"])
    (length,) = struct.unpack_from(">I", raw)
    assert length == len(raw) - 4
    for data in buffer_kinds(raw[4:]):
        assert decode_registry_body(data) == vector["message"]
    assert RegistryFrameDecoder().feed(raw) == [vector["message"]]


@pytest.mark.parametrize("vector", [v for v in FRAMING["registry"] if v["canonical"]],
                         ids=lambda v: v["name"])
def test_vector_encode(vector):
    assert encode_registry_message(vector["message"]).hex() == vector["hex"]


@pytest.mark.parametrize("vector", FRAMING["challenges"], ids=lambda v: v["text"])
def test_challenge_vectors(vector):
    build = {"resolve": challenge_resolve, "node": challenge_node, "pair": challenge_pair}[vector["kind"]]
    assert build(*vector["args"]) == vector["text"].encode("ascii")


def test_is_error():
    assert is_error({"type": "error", "error": "request failed"})
    assert is_error({"type": "lookup_ok", "error": "anything"})
    assert is_error({"type": "error"})
    assert not is_error({"type": "lookup_ok", "node_id": 5})
    assert not is_error({"type": "lookup_ok", "error": None})


# ---------------------------------------------------------------------------------------------
# Encoder and body decoder
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("message", [{}, {"type": 5}, {"node_id": 1}, [], "heartbeat", None])
def test_encode_requires_object_with_string_type(message):
    with pytest.raises(ValueError):
        encode_registry_message(message)  # type: ignore[arg-type]


def test_encode_rejects_oversized():
    with pytest.raises(ValueError):
        encode_registry_message({"type": "x", "blob": "a" * MAX_FRAME_BYTES})


def test_encode_at_limit():
    filler = MAX_FRAME_BYTES - len(b'{"type":"x","blob":""}')
    raw = encode_registry_message({"type": "x", "blob": "a" * filler})
    assert len(raw) == 4 + MAX_FRAME_BYTES
    assert RegistryFrameDecoder().feed(raw)[0]["blob"] == "a" * filler


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"", "registry.bad_json"),
        (b"{", "registry.bad_json"),
        (b"\xff\xfe\xfd", "registry.bad_json"),
        (b"[" * 100_000, "registry.bad_json"),            # recursion limit
        (b"1" * 5000, "registry.bad_json"),               # int digit limit
        (b"[]", "registry.not_object"),
        (b'"type"', "registry.not_object"),
        (b"null", "registry.not_object"),
        (b"{}", "registry.no_type"),
        (b'{"type": 1}', "registry.no_type"),
        (b'{"type": null}', "registry.no_type"),
    ],
)
def test_body_malformed(body, reason):
    with pytest.raises(MalformedFrame) as info:
        decode_registry_body(body)
    assert info.value.reason == reason


@settings(max_examples=200, deadline=None)
@given(registry_messages)
def test_round_trip(message):
    raw = encode_registry_message(message)
    assert struct.unpack_from(">I", raw)[0] == len(raw) - 4
    assert decode_registry_body(raw[4:]) == message
    assert RegistryFrameDecoder().feed(raw) == [message]


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=100),
    st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda v, enc: json.dumps({"type": v}).encode(enc),
              json_values, st.sampled_from(["utf-8", "utf-16", "utf-32", "utf-8-sig"])),
))
def test_fuzz_body(data):
    for view in buffer_kinds(data):
        result = decode_or_malformed(decode_registry_body, view)
        if result is not None:
            assert isinstance(result, dict) and isinstance(result["type"], str)


# ---------------------------------------------------------------------------------------------
# Incremental decoder: chunking
# ---------------------------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(st.lists(registry_messages, min_size=1, max_size=5), cuts)
def test_chunking_whole_bytewise_random(messages, cut_points):
    stream = b"".join(encode_registry_message(m) for m in messages)
    whole = RegistryFrameDecoder().feed(stream)
    assert whole == messages
    assert feed_all(RegistryFrameDecoder(), one_byte_chunks(stream)) == messages
    assert feed_all(RegistryFrameDecoder(), split_at(stream, cut_points)) == messages


@settings(max_examples=100, deadline=None)
@given(st.lists(registry_messages, max_size=4), registry_messages, st.data())
def test_chunking_trailing_partial(messages, last, data):
    stream = b"".join(encode_registry_message(m) for m in messages)
    last_raw = encode_registry_message(last)
    split = data.draw(st.integers(0, len(last_raw) - 1))
    for chunks in ([stream + last_raw[:split]], one_byte_chunks(stream + last_raw[:split])):
        decoder = RegistryFrameDecoder()
        assert feed_all(decoder, chunks) == messages
        assert decoder.buffered_bytes == split
        assert decoder.feed(last_raw[split:]) == [last]
        assert decoder.buffered_bytes == 0


def test_decoder_rejects_length_over_limit_before_body_arrives():
    decoder = RegistryFrameDecoder()
    with pytest.raises(MalformedFrame) as info:
        decoder.feed(struct.pack(">I", MAX_FRAME_BYTES + 1))
    assert info.value.reason == "registry.too_long"


def test_decoder_custom_limit():
    raw = encode_registry_message({"type": "heartbeat", "node_id": 5})
    decoder = RegistryFrameDecoder(max_frame_bytes=len(raw) - 5)
    with pytest.raises(MalformedFrame):
        decoder.feed(raw[:4])
    assert RegistryFrameDecoder(max_frame_bytes=len(raw) - 4).feed(raw) == [{"type": "heartbeat", "node_id": 5}]


def test_decoder_empty_body_is_malformed():
    with pytest.raises(MalformedFrame):
        RegistryFrameDecoder().feed(b"\x00\x00\x00\x00")


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=120),
    st.builds(lambda body, extra: struct.pack(">I", len(body)) + body + extra,
              st.binary(max_size=60), st.binary(max_size=20)),
), cuts)
def test_fuzz_stream(data, cut_points):
    for chunks in ([data], one_byte_chunks(data), split_at(data, cut_points)):
        decoder = RegistryFrameDecoder()
        try:
            for chunk in chunks:
                for message in decoder.feed(memoryview(chunk)):
                    assert isinstance(message, dict) and isinstance(message["type"], str)
        except MalformedFrame:
            pass
