# SPDX-License-Identifier: Apache-2.0
"""Sliding anti-replay window over nonce counters (D01 §19.9; ``wire.md`` §7).

Where it sits: ring 2, one per peer session and nonce prefix. ``check`` may run before
decryption; ``commit`` only after the AEAD tag verified, so forged packets never move the window.
"""

from __future__ import annotations


class ReplayWindow:
    def __init__(self, size: int = 256) -> None:
        if size <= 0:
            raise ValueError("window size must be positive")
        self.size = size
        self.highest = 0
        self._seen_any = False
        self._bits = 0  # bit i set: counter (highest - i) was accepted

    def check(self, counter: int) -> bool:
        """True if ``counter`` would be accepted (not too old, not seen)."""
        if not self._seen_any or counter > self.highest:
            return True
        offset = self.highest - counter
        if offset >= self.size:
            return False
        return not (self._bits >> offset) & 1

    def commit(self, counter: int) -> None:
        """Record an authenticated counter. Call only after ``check`` returned True."""
        if not self._seen_any:
            self._seen_any = True
            self.highest = counter
            self._bits = 1
            return
        if counter > self.highest:
            shift = counter - self.highest
            self._bits = ((self._bits << shift) | 1) & ((1 << self.size) - 1) if shift < self.size else 1
            self.highest = counter
            return
        self._bits |= 1 << (self.highest - counter)
