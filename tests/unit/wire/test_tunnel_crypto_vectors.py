# SPDX-License-Identifier: Apache-2.0
"""wire.md §7/§17 cryptographic vectors, checked with ``cryptography`` directly.

The project's tunnel module is tested elsewhere; these tests pin the constructions it must
implement (HKDF info strings, AES-256-GCM nonce layout and AAD) to the §17 bytes, and tie them to
the frame codec (``decode_sealed``/``encode_sealed_prefix``/``sealed_aad``).
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pilotsock.wire.header import decode_packet
from pilotsock.wire.tunnel_frames import decode_sealed, encode_sealed_prefix, sealed_aad

from ._support import load_vectors

TUNNEL = load_vectors("tunnel.json")
X = TUNNEL["x25519"]
SPEC_SYN_HEX = load_vectors("packets.json")["vectors"][0]["hex"]


def shared_secret() -> bytes:
    alice = X25519PrivateKey.from_private_bytes(bytes.fromhex(X["alice_private"]))
    return alice.exchange(X25519PublicKey.from_public_bytes(bytes.fromhex(X["bob_public"])))


def test_rfc7748_key_pairs_and_shared_secret():
    alice = X25519PrivateKey.from_private_bytes(bytes.fromhex(X["alice_private"]))
    bob = X25519PrivateKey.from_private_bytes(bytes.fromhex(X["bob_private"]))
    assert alice.public_key().public_bytes_raw().hex() == X["alice_public"]
    assert bob.public_key().public_bytes_raw().hex() == X["bob_public"]
    assert shared_secret().hex() == X["shared"]
    assert bob.exchange(alice.public_key()).hex() == X["shared"]
    assert X["shared"] == "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"


@pytest.mark.parametrize("vector", TUNNEL["kdf"], ids=lambda v: v["name"])
def test_kdf_vectors(vector):
    shared = shared_secret()
    info = vector["info"].encode()
    if vector["construction"] == "hkdf":
        key = HKDF(SHA256(), length=32, salt=None, info=info).derive(shared)
    else:
        key = hashlib.sha256(info + shared).digest()
    assert key.hex() == vector["key"]


def test_tunnel_key_d01_literal_and_manual_hkdf():
    """§7: empty salt == 32 zero bytes; one Expand block T(1) = HMAC(PRK, info || 0x01)."""
    shared = shared_secret()
    prk = hmac.new(bytes(32), shared, hashlib.sha256).digest()
    key = hmac.new(prk, b"pilot-tunnel-v1" + b"\x01", hashlib.sha256).digest()
    assert key.hex() == "3e765a2f49fe2a9185dd5d57c08a3525060d2d2c2b2a356fadef25f614d38662"
    assert HKDF(SHA256(), length=32, salt=None, info=b"pilot-tunnel-v1").derive(shared) == key


@pytest.mark.parametrize("vector", TUNNEL["pils"], ids=lambda v: v["name"])
def test_pils_vector_encrypts(vector):
    key = bytes.fromhex(vector["key"])
    prefix = encode_sealed_prefix(vector["sender"], bytes.fromhex(vector["nonce_prefix"]),
                                  vector["counter"])
    nonce = prefix[8:20]
    aad = bytes.fromhex(vector["aad"]) or None
    sealed = AESGCM(key).encrypt(nonce, bytes.fromhex(vector["plaintext"]), aad)
    assert (prefix + sealed).hex() == vector["hex"]


@pytest.mark.parametrize("vector", TUNNEL["pils"], ids=lambda v: v["name"])
def test_pils_vector_decrypts_via_codec(vector):
    frame = decode_sealed(bytes.fromhex(vector["hex"]))
    aad = sealed_aad(frame.sender) if vector["aad"] else None
    plaintext = AESGCM(bytes.fromhex(vector["key"])).decrypt(frame.nonce, bytes(frame.ciphertext), aad)
    assert plaintext.hex() == vector["plaintext"]


def test_spec17_pils_d01_exact_bytes():
    vector = TUNNEL["pils"][0]
    assert vector["hex"] == (
        "50494c53" "00000001" "a1b2c3d4" "0000000000000001"
        "0443bba68eebfd923233a502903a7c30a9e289a73d0c94e7cca9e98eed540fd163a1"
        "b5b13d992ea53c306e479af3bf448922"
    )
    assert vector["plaintext"] == SPEC_SYN_HEX
    frame = decode_sealed(bytes.fromhex(vector["hex"]))
    key = HKDF(SHA256(), length=32, salt=None, info=b"pilot-tunnel-v1").derive(shared_secret())
    plaintext = AESGCM(key).decrypt(frame.nonce, bytes(frame.ciphertext), sealed_aad(1))
    # the plaintext is the whole marshalled packet (wire.md §5)
    packet = decode_packet(plaintext)
    assert (packet.src_node, packet.dst_node, packet.src_port, packet.dst_port) == (1, 2, 49152, 1000)


def test_generations_do_not_interoperate():
    """§15: a D01 frame fails under the snapshot construction and vice versa."""
    d01, snapshot = TUNNEL["pils"][0], TUNNEL["pils"][1]
    d01_frame = decode_sealed(bytes.fromhex(d01["hex"]))
    with pytest.raises(InvalidTag):
        AESGCM(bytes.fromhex(snapshot["key"])).decrypt(d01_frame.nonce, bytes(d01_frame.ciphertext), None)
    with pytest.raises(InvalidTag):  # right key, missing AAD
        AESGCM(bytes.fromhex(d01["key"])).decrypt(d01_frame.nonce, bytes(d01_frame.ciphertext), None)
    snap_frame = decode_sealed(bytes.fromhex(snapshot["hex"]))
    with pytest.raises(InvalidTag):
        AESGCM(bytes.fromhex(d01["key"])).decrypt(snap_frame.nonce, bytes(snap_frame.ciphertext),
                                                  sealed_aad(1))


def test_aad_binds_the_sender():
    vector = TUNNEL["pils"][0]
    frame = decode_sealed(bytes.fromhex(vector["hex"]))
    with pytest.raises(InvalidTag):
        AESGCM(bytes.fromhex(vector["key"])).decrypt(frame.nonce, bytes(frame.ciphertext), sealed_aad(2))
