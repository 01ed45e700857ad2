# SPDX-License-Identifier: Apache-2.0
"""Node identity: an Ed25519 key pair persisted in Go's JSON format (``wire.md`` §14).

File: ``{"private_key": b64(seed ‖ public, 64 bytes), "public_key": b64(32 bytes)}``, 2-space
indent, mode 0600, parent directory 0700. On load the public key must match the private key.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_RAW = serialization.Encoding.Raw
_RAW_PUBLIC = serialization.PublicFormat.Raw
_RAW_PRIVATE = serialization.PrivateFormat.Raw


class Identity:
    """An Ed25519 identity. ``public_key`` is the raw 32-byte key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.public_key = private_key.public_key().public_bytes(_RAW, _RAW_PUBLIC)

    @classmethod
    def generate(cls) -> Identity:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self.public_key).decode()

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def sign_b64(self, message: bytes) -> str:
        return base64.b64encode(self.sign(message)).decode()

    def to_json(self) -> str:
        seed = self._private.private_bytes(_RAW, _RAW_PRIVATE, serialization.NoEncryption())
        return json.dumps(
            {
                "private_key": base64.b64encode(seed + self.public_key).decode(),
                "public_key": self.public_key_b64,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> Identity:
        """Parse the Go identity format. Raises ``ValueError`` for anything inconsistent."""
        try:
            data = json.loads(text)
            private = base64.b64decode(data["private_key"], validate=True)
            public = base64.b64decode(data["public_key"], validate=True)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"invalid identity file: {exc}") from exc
        if len(private) == 64:
            seed, embedded_public = private[:32], private[32:]
        elif len(private) == 32:
            seed, embedded_public = private, None
        else:
            raise ValueError("invalid identity file: private key must be 32 or 64 bytes")
        identity = cls.from_seed(seed)
        if identity.public_key != public or (embedded_public not in (None, public)):
            raise ValueError("invalid identity file: public key does not match the private key")
        return identity

    def save(self, path: Path) -> None:
        """Write atomically with mode 0600 (parent 0700)."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.to_json() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    @classmethod
    def load_or_create(cls, path: Path) -> Identity:
        if path.exists():
            return cls.from_json(path.read_text())
        identity = cls.generate()
        identity.save(path)
        return identity


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Ed25519 verification that never raises for bad input."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def verify_signature_b64(public_key_b64: str, signature_b64: str, message: bytes) -> bool:
    try:
        public_key = base64.b64decode(public_key_b64, validate=True)
        signature = base64.b64decode(signature_b64, validate=True)
    except (ValueError, TypeError):
        return False
    return verify_signature(public_key, signature, message)
