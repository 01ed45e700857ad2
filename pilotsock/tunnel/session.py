# SPDX-License-Identifier: Apache-2.0
"""One AEAD session with a peer: AES-256-GCM, AAD = sender node ID, prefix ‖ counter nonces.

Where it sits: ring 2. packet bytes -> ``seal`` -> PILS frame; PILS frame -> ``open`` -> packet.

Rules (``wire.md`` §7): our nonce = 4 random bytes ‖ u64 counter, first counter 1, never reset in a
session. Receiving: a per-prefix replay window; a **new** peer prefix is accepted only if the
frame authenticates, then the old prefix is retired for good (Go restarts its counter with a new
prefix on every KX it processes).
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pilotsock.tunnel.replay_window import ReplayWindow
from pilotsock.wire.tunnel_frames import NONCE, SealedFrame, encode_sealed_prefix, sealed_aad

MAX_COUNTER = (1 << 64) - 2  # rekey before the counter reaches 2^64 - 1
RETIRED_PREFIXES = 16


class OpenFailure(Exception):
    """Why a PILS frame was dropped; ``reason`` is a counter name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TunnelSession:
    def __init__(self, key: bytes, *, own_node: int, peer_node: int, peer_x25519: bytes,
                 random_bytes: Callable[[int], bytes], replay_window: int = 256) -> None:
        self._aead = AESGCM(key)
        self.own_node = own_node
        self.peer_node = peer_node
        self.peer_x25519 = peer_x25519
        self.send_prefix = random_bytes(4)
        self.send_counter = 0
        self._own_aad = sealed_aad(own_node)
        self._peer_aad = sealed_aad(peer_node)
        self._window_size = replay_window
        self.peer_prefix: bytes | None = None
        self._window = ReplayWindow(replay_window)
        self._retired: deque[bytes] = deque(maxlen=RETIRED_PREFIXES)

    @property
    def exhausted(self) -> bool:
        return self.send_counter >= MAX_COUNTER

    def seal(self, plaintext: bytes | memoryview) -> bytes:
        """Encrypt one marshalled packet into a complete PILS frame."""
        self.send_counter += 1
        counter = self.send_counter
        nonce = NONCE.pack(self.send_prefix, counter)
        return encode_sealed_prefix(self.own_node, self.send_prefix, counter) + self._aead.encrypt(
            nonce, bytes(plaintext), self._own_aad
        )

    def open(self, frame: SealedFrame) -> bytes:
        """Decrypt a PILS frame from the peer. Raises :class:`OpenFailure`."""
        prefix = frame.nonce_prefix
        counter = frame.counter
        if prefix == self.peer_prefix:
            if not self._window.check(counter):
                raise OpenFailure("tunnel.replay")
            plaintext = self._decrypt(frame)
            self._window.commit(counter)
            return plaintext
        if prefix in self._retired:
            raise OpenFailure("tunnel.retired_prefix")
        plaintext = self._decrypt(frame)  # only an authentic frame may switch prefixes
        if self.peer_prefix is not None:
            self._retired.append(self.peer_prefix)
        self.peer_prefix = prefix
        self._window = ReplayWindow(self._window_size)
        self._window.commit(counter)
        return plaintext

    def _decrypt(self, frame: SealedFrame) -> bytes:
        try:
            return self._aead.decrypt(frame.nonce, bytes(frame.ciphertext), self._peer_aad)
        except InvalidTag:
            raise OpenFailure("tunnel.decrypt") from None
