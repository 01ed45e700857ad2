# SPDX-License-Identifier: Apache-2.0
"""Tunnel frame codecs PILT/PILS/PILK/PILA/PILP and datagram classification (wire.md §5–§6)."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from pilotsock.errors import MalformedFrame
from pilotsock.wire import tunnel_frames as tf
from pilotsock.wire.tunnel_frames import (
    FrameKind,
    classify_datagram,
    decode_key_exchange,
    decode_plaintext,
    decode_punch,
    decode_sealed,
    encode_authenticated_key_exchange,
    encode_key_exchange,
    encode_plaintext,
    encode_punch,
    encode_sealed_prefix,
    pila_signed_message,
    sealed_aad,
)

from ._support import buffer_kinds, decode_or_malformed, load_vectors, u32, u64

TUNNEL = load_vectors("tunnel.json")
SPEC_SYN = bytes.fromhex(load_vectors("packets.json")["vectors"][0]["hex"])

keys32 = st.binary(min_size=32, max_size=32)
MAGICS = [b"PILT", b"PILS", b"PILK", b"PILA", b"PILP"]


# ---------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------

def test_magics_and_sizes():
    assert (
        bytes.fromhex("50494c54"), bytes.fromhex("50494c53"), bytes.fromhex("50494c4b"),
        bytes.fromhex("50494c41"), bytes.fromhex("50494c50")) == (tf.MAGIC_PILT, tf.MAGIC_PILS, tf.MAGIC_PILK, tf.MAGIC_PILA, tf.MAGIC_PILP)
    assert tf.PILS_PREFIX.size == 20
    assert tf.PILS_OVERHEAD_BYTES == 36
    assert tf.PILK_BYTES == 40
    assert tf.PILA_BYTES == 136
    assert tf.PILS_OVERHEAD_BYTES + 34 == 70  # wire.md §5: PILS overhead incl. header


# ---------------------------------------------------------------------------------------------
# classify_datagram
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("first", range(0x10))
def test_first_byte_below_0x10_is_beacon(first):
    assert classify_datagram(bytes((first,))) is FrameKind.BEACON
    assert classify_datagram(bytes((first,)) + b"PILS") is FrameKind.BEACON


@pytest.mark.parametrize("magic", MAGICS)
def test_magic_classification(magic):
    assert classify_datagram(magic).value == magic.decode()
    assert classify_datagram(memoryview(magic + b"rest")).value == magic.decode()


@pytest.mark.parametrize("data", [b"", b"P", b"PIL", b"PILX", b"pils", b"\x10\x00\x00\x00", b"\xff" * 8])
def test_classify_rejects_empty_and_unknown(data):
    with pytest.raises(MalformedFrame):
        classify_datagram(data)


# ---------------------------------------------------------------------------------------------
# PILT
# ---------------------------------------------------------------------------------------------

def test_plaintext_round_trip_of_spec_syn():
    frame = encode_plaintext(SPEC_SYN)
    assert frame == b"PILT" + SPEC_SYN and len(frame) == 38
    assert classify_datagram(frame) is FrameKind.PILT
    for data in buffer_kinds(frame):
        assert bytes(decode_plaintext(data)) == SPEC_SYN


@pytest.mark.parametrize("data", [b"PILT" + bytes(33), b"PILS" + bytes(34), b"", b"PILT"])
def test_plaintext_rejects_short_or_wrong_magic(data):
    with pytest.raises(MalformedFrame):
        decode_plaintext(data)


# ---------------------------------------------------------------------------------------------
# PILS
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("vector", TUNNEL["pils"], ids=lambda v: v["name"])
def test_sealed_vector_split(vector):
    raw = bytes.fromhex(vector["hex"])
    for data in buffer_kinds(raw):
        frame = decode_sealed(data)
        assert frame.sender == vector["sender"]
        assert frame.nonce_prefix.hex() == vector["nonce_prefix"]
        assert frame.counter == vector["counter"]
        assert frame.nonce == frame.nonce_prefix + frame.counter.to_bytes(8, "big")
        assert bytes(frame.ciphertext) == raw[20:]
    assert classify_datagram(raw) is FrameKind.PILS


@pytest.mark.parametrize("vector", TUNNEL["pils"], ids=lambda v: v["name"])
def test_sealed_vector_prefix_and_aad(vector):
    raw = bytes.fromhex(vector["hex"])
    prefix = encode_sealed_prefix(vector["sender"], bytes.fromhex(vector["nonce_prefix"]),
                                  vector["counter"])
    assert prefix == raw[:20]
    if vector["aad"]:
        assert sealed_aad(vector["sender"]).hex() == vector["aad"]
        assert sealed_aad(vector["sender"]) == raw[4:8]  # AAD = bytes 4-7 of the frame


def test_spec17_pils_is_70_bytes():
    raw = bytes.fromhex(TUNNEL["pils"][0]["hex"])
    assert len(raw) == 70
    assert len(decode_sealed(raw).ciphertext) == 34 + 16


@pytest.mark.parametrize("length", range(36))
def test_sealed_rejects_short(length):
    raw = bytes.fromhex(TUNNEL["pils"][0]["hex"])[:length]
    with pytest.raises(MalformedFrame):
        decode_sealed(raw)


def test_sealed_minimum_is_tag_only():
    frame = decode_sealed(encode_sealed_prefix(9, b"abcd", 0) + bytes(16))
    assert (frame.sender, frame.counter, len(frame.ciphertext)) == (9, 0, 16)


def test_sealed_rejects_other_magic():
    with pytest.raises(MalformedFrame):
        decode_sealed(b"PILT" + bytes(40))


@settings(max_examples=200, deadline=None)
@given(u32, st.binary(min_size=4, max_size=4), u64, st.binary(min_size=16, max_size=300))
def test_sealed_round_trip(sender, prefix, counter, ciphertext):
    raw = encode_sealed_prefix(sender, prefix, counter) + ciphertext
    frame = decode_sealed(raw)
    assert (frame.sender, frame.nonce_prefix, frame.counter) == (sender, prefix, counter)
    assert frame.nonce == prefix + counter.to_bytes(8, "big")
    assert bytes(frame.ciphertext) == ciphertext
    assert sealed_aad(sender) == raw[4:8]


# ---------------------------------------------------------------------------------------------
# PILK / PILA
# ---------------------------------------------------------------------------------------------

def test_pila_signed_message_layout_spec17():
    vector = TUNNEL["pila_signed_message"]
    public = bytes.fromhex(vector["x25519_public"])
    message = pila_signed_message(vector["sender"], public)
    assert message.hex() == vector["hex"]
    assert message == b"\x61\x75\x74\x68" + b"\x00\x00\x00\x05" + public
    assert len(message) == 40
    assert not message.startswith(b"auth:")


def test_pila_vector_decodes_and_verifies():
    vector = TUNNEL["pila"]
    raw = bytes.fromhex(vector["hex"])
    assert len(raw) == 136
    assert classify_datagram(raw) is FrameKind.PILA
    for data in buffer_kinds(raw):
        kx = decode_key_exchange(data)
        assert kx.authenticated
        assert kx.sender == vector["sender"]
        assert kx.x25519_public.hex() == vector["x25519_public"]
        assert kx.identity_key.hex() == vector["ed25519_public"]
        assert kx.signature.hex() == vector["signature"]
    kx = decode_key_exchange(raw)
    # Verifies under the frame's identity key over exactly the 40-byte message of wire.md §6.2.
    Ed25519PublicKey.from_public_bytes(kx.identity_key).verify(
        kx.signature, pila_signed_message(kx.sender, kx.x25519_public))


def test_pila_vector_encode():
    vector = TUNNEL["pila"]
    seed = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["ed25519_seed"]))
    x_public = bytes.fromhex(vector["x25519_public"])
    signature = seed.sign(pila_signed_message(vector["sender"], x_public))
    assert signature.hex() == vector["signature"]  # Ed25519 is deterministic
    frame = encode_authenticated_key_exchange(vector["sender"], x_public,
                                              bytes.fromhex(vector["ed25519_public"]), signature)
    assert frame.hex() == vector["hex"]


def test_pila_trailing_capability_bytes_are_ignored():
    raw = bytes.fromhex(TUNNEL["pila"]["hex"])
    assert decode_key_exchange(raw + b"\x01\x02") == decode_key_exchange(raw)


def test_pilk_vector():
    vector = TUNNEL["pilk"]
    raw = bytes.fromhex(vector["hex"])
    x_public = bytes.fromhex(vector["x25519_public"])
    assert encode_key_exchange(vector["sender"], x_public) == raw
    assert classify_datagram(raw) is FrameKind.PILK
    kx = decode_key_exchange(raw)
    assert (kx.sender, kx.x25519_public, kx.identity_key, kx.signature, kx.authenticated) == (
        vector["sender"], x_public, b"", b"", False)


@pytest.mark.parametrize("data", [b"PILA" + bytes(131), b"PILK" + bytes(35), b"PILS" + bytes(200),
                                  b"", b"PIL", b"pila" + bytes(132)])
def test_key_exchange_rejects(data):
    with pytest.raises(MalformedFrame):
        decode_key_exchange(data)


def test_key_exchange_encoders_check_lengths():
    with pytest.raises(ValueError):
        encode_key_exchange(1, bytes(31))
    with pytest.raises(ValueError):
        encode_authenticated_key_exchange(1, bytes(32), bytes(33), bytes(64))
    with pytest.raises(ValueError):
        encode_authenticated_key_exchange(1, bytes(32), bytes(32), bytes(63))


@settings(max_examples=100, deadline=None)
@given(u32, keys32, keys32, st.binary(min_size=64, max_size=64), st.binary(max_size=12))
def test_pila_round_trip(sender, x_public, identity, signature, trailing):
    raw = encode_authenticated_key_exchange(sender, x_public, identity, signature)
    assert len(raw) == 136
    assert decode_key_exchange(raw + trailing) == (sender, x_public, identity, signature, True)


@settings(max_examples=100, deadline=None)
@given(u32, keys32, st.binary(max_size=12))
def test_pilk_round_trip(sender, x_public, trailing):
    raw = encode_key_exchange(sender, x_public)
    assert len(raw) == 40
    assert decode_key_exchange(raw + trailing) == (sender, x_public, b"", b"", False)


@settings(max_examples=25, deadline=None)
@given(u32, st.binary(min_size=32, max_size=32))
def test_pila_signature_property(sender, seed):
    """A PILA built from a real identity verifies; changing the sender breaks it."""
    identity = Ed25519PrivateKey.from_private_bytes(seed)
    x_public = bytes(reversed(seed))
    message = pila_signed_message(sender, x_public)
    assert message[:4] == b"auth" and int.from_bytes(message[4:8], "big") == sender
    raw = encode_authenticated_key_exchange(
        sender, x_public, identity.public_key().public_bytes_raw(), identity.sign(message))
    kx = decode_key_exchange(raw)
    public = Ed25519PublicKey.from_public_bytes(kx.identity_key)
    public.verify(kx.signature, pila_signed_message(kx.sender, kx.x25519_public))
    with pytest.raises(InvalidSignature):
        public.verify(kx.signature, pila_signed_message(sender ^ 1, kx.x25519_public))


# ---------------------------------------------------------------------------------------------
# PILP
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("vector", TUNNEL["pilp"], ids=lambda v: v["name"])
def test_punch_vectors(vector):
    raw = bytes.fromhex(vector["hex"])
    assert classify_datagram(raw) is FrameKind.PILP
    for data in buffer_kinds(raw):
        assert decode_punch(data) == vector["sender"]
    if vector["sender"] is not None:
        assert encode_punch(vector["sender"]) == raw


def test_punch_accepts_partial_sender_as_bare():
    assert decode_punch(b"PILP\x00\x00") is None


@pytest.mark.parametrize("data", [b"", b"PIL", b"PILS\x00\x00\x00\x01"])
def test_punch_rejects(data):
    with pytest.raises(MalformedFrame):
        decode_punch(data)


@settings(max_examples=100, deadline=None)
@given(u32, st.binary(max_size=8))
def test_punch_round_trip(sender, trailing):
    raw = encode_punch(sender)
    assert len(raw) == 8
    assert decode_punch(raw + trailing) == sender


# ---------------------------------------------------------------------------------------------
# Fuzz: every decoder, arbitrary bytes and magic-prefixed bytes
# ---------------------------------------------------------------------------------------------

DECODERS = [classify_datagram, decode_plaintext, decode_sealed, decode_key_exchange, decode_punch]
frames = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda magic, rest: magic + rest, st.sampled_from(MAGICS), st.binary(max_size=200)),
)


@settings(max_examples=300, deadline=None)
@given(frames)
def test_fuzz(data):
    for decode in DECODERS:
        for view in buffer_kinds(data):
            decode_or_malformed(decode, view)


# ---------------------------------------------------------------------------------------------
# Encoder argument checks (style.md §4: bad arguments raise ValueError, never silently reshape)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("prefix", [b"", b"abc", b"abcde", bytes(12)])
def test_sealed_prefix_rejects_wrong_nonce_prefix_length(prefix):
    with pytest.raises(ValueError):
        encode_sealed_prefix(1, prefix, 1)


@pytest.mark.parametrize("length", [0, 31, 33])
def test_pila_signed_message_rejects_wrong_key_length(length):
    with pytest.raises(ValueError):
        pila_signed_message(1, bytes(length))
