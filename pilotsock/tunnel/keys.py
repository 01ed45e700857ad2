# SPDX-License-Identifier: Apache-2.0
"""Tunnel key agreement: X25519 then HKDF-SHA256 (``wire.md`` §6.1, §7; D01 generation).

Where it sits: ring 2 helper. ``key = HKDF-SHA256(salt=empty, ikm=shared, info=b"pilot-tunnel-v1",
L=32)``; one key serves both directions (the random nonce prefixes keep nonces apart).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TUNNEL_INFO = b"pilot-tunnel-v1"
KEY_BYTES = 32
_ZERO_SECRET = bytes(32)


class KeyAgreementError(ValueError):
    """The peer's X25519 key is invalid or yields the all-zero secret."""


class TunnelKeyPair:
    """The daemon's X25519 pair: generated at start, used for every peer, never rotated."""

    def __init__(self, private_key: X25519PrivateKey | None = None) -> None:
        self._private = private_key or X25519PrivateKey.generate()
        self.public_key = self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> TunnelKeyPair:
        return cls(X25519PrivateKey.from_private_bytes(raw))

    def shared_secret(self, peer_public: bytes) -> bytes:
        try:
            shared = self._private.exchange(X25519PublicKey.from_public_bytes(peer_public))
        except ValueError as exc:  # cryptography rejects low-order points with ValueError
            raise KeyAgreementError(str(exc)) from exc
        if shared == _ZERO_SECRET:
            raise KeyAgreementError("all-zero shared secret")
        return shared


def derive_tunnel_key(shared_secret: bytes, info: bytes = TUNNEL_INFO) -> bytes:
    """HKDF-SHA256 with an empty salt (equivalent to 32 zero bytes)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(shared_secret)
