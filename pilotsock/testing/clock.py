# SPDX-License-Identifier: Apache-2.0
"""A clock that only moves when told to (deterministic tests never read real time)."""

from __future__ import annotations


class FakeClock:
    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self.now += seconds
        return self.now

    def jump_to(self, when: float) -> float:
        if when > self.now:
            self.now = when
        return self.now
