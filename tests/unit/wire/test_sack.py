# SPDX-License-Identifier: Apache-2.0
"""In-band SACK payload codec (transport.md §5)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pilotsock.errors import MalformedFrame
from pilotsock.wire.sack import MAX_SACK_BLOCKS, decode_sack, encode_sack, is_sack_payload

from ._support import buffer_kinds, decode_or_malformed, load_vectors, u32

SACK_VECTORS = load_vectors("sack.json")["vectors"]

blocks = st.lists(st.tuples(u32, u32), min_size=1, max_size=MAX_SACK_BLOCKS)


@pytest.mark.parametrize("vector", SACK_VECTORS, ids=lambda v: v["name"])
def test_vector_encode(vector):
    assert encode_sack([tuple(b) for b in vector["blocks"]]).hex() == vector["hex"]


@pytest.mark.parametrize("vector", SACK_VECTORS, ids=lambda v: v["name"])
def test_vector_decode(vector):
    raw = bytes.fromhex(vector["hex"])
    for data in buffer_kinds(raw):
        assert is_sack_payload(data)
        assert decode_sack(data) == [tuple(b) for b in vector["blocks"]]


def test_golden_corpus_one_block_bytes():
    assert encode_sack([(1500, 1600)]) == b"SACK\x01\x00\x00\x05\xdc\x00\x00\x06\x40"


def test_block_count_limits_on_encode():
    with pytest.raises(ValueError):
        encode_sack([])
    with pytest.raises(ValueError):
        encode_sack([(0, 1)] * (MAX_SACK_BLOCKS + 1))
    assert MAX_SACK_BLOCKS == 4


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"SACK",                                   # shorter than 5
        b"SACK\x00",                               # n = 0
        b"SACK\x05" + bytes(40),                   # n = 5
        b"SACK\x01" + bytes(7),                    # one block needs 8 bytes
        b"SACK\x02" + bytes(15),
        b"sack\x01" + bytes(8),                    # magic is case-sensitive
        b"SACX\x01" + bytes(8),
        b"hello world, this is data",
    ],
)
def test_not_sack(payload):
    """Such payloads are data (transport.md §5 decode rule) and decode_sack refuses them."""
    assert not is_sack_payload(payload)
    with pytest.raises(MalformedFrame):
        decode_sack(payload)


def test_trailing_bytes_are_ignored():
    raw = encode_sack([(1500, 1600)]) + b"more"
    assert is_sack_payload(raw)
    assert decode_sack(raw) == [(1500, 1600)]


def test_any_block_order_and_wrapping_values_are_kept():
    given_blocks = [(4294967000, 100), (3000, 3400), (1500, 1600)]
    assert decode_sack(encode_sack(given_blocks)) == given_blocks


@settings(max_examples=200, deadline=None)
@given(blocks, st.binary(max_size=8))
def test_round_trip(sack_blocks, trailing):
    raw = encode_sack(sack_blocks)
    assert len(raw) == 5 + 8 * len(sack_blocks)
    assert is_sack_payload(raw + trailing)
    assert decode_sack(raw + trailing) == sack_blocks


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=60),
                 st.builds(lambda n, rest: b"SACK" + bytes((n,)) + rest,
                           st.integers(0, 255), st.binary(max_size=40))))
def test_fuzz(data):
    for view in buffer_kinds(data):
        is_sack = is_sack_payload(view)
        assert isinstance(is_sack, bool)
        result = decode_or_malformed(decode_sack, view)
        assert (result is not None) == is_sack
        if result is not None:
            assert 1 <= len(result) <= MAX_SACK_BLOCKS
            assert result == [struct.unpack_from(">II", data, 5 + 8 * i) for i in range(len(result))]
