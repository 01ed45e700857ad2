# SPDX-License-Identifier: Apache-2.0
"""Kinds of expected failure (``compat_tests/expected/<major.minor>.py``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Expected:
    reason: str

    @property
    def kind(self) -> str:
        return type(self).__name__


class Inherent(Expected):
    """Cannot pass over Pilot by design (e.g. an IPv4 address written into the protocol)."""


class NotYet(Expected):
    """A pilotsock gap: the run fails when such a test passes, so the entry gets removed."""


class Flaky(Expected):
    """Timing-dependent here; either outcome is accepted."""


class Slow(Expected):
    """Too slow for tier 1; either outcome is accepted."""
