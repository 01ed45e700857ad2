# SPDX-License-Identifier: Apache-2.0
"""Validation rules and the register rate limiter of the registry (``wire.md`` §10.4, §14).

Where it sits: request JSON → ``RegistryService`` → **rules** (pure functions, one small
time-parameterised limiter). Nothing here touches the store, a clock or the network.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from typing import Any

from pilotsock.endpoints import format_host_port, split_host_port

# §14: lowercase letters, digits and inner hyphens, 1–63 characters.
HOSTNAME_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
RESERVED_HOSTNAMES = frozenset({"localhost", "backbone", "broadcast"})
# §14: tags are 1–32 characters of the same alphabet; a leading '#' is stripped.
TAG_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
MAX_TAGS = 10
PUBLIC_KEY_BYTES = 32  # Ed25519
U32_MAX = 0xFFFFFFFF


def hostname_problem(hostname: str) -> str | None:
    """Return why ``hostname`` is not a valid registry hostname, or None if it is valid.

    The empty string is not valid here; callers treat ``""`` as "clear" before asking.
    """
    if len(hostname) > 63:
        return "hostname longer than 63 characters"
    if HOSTNAME_PATTERN.fullmatch(hostname) is None:
        return "hostname must match [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
    if hostname in RESERVED_HOSTNAMES:
        return f"hostname {hostname!r} is reserved"
    return None


def normalize_tags(value: object) -> list[str] | None:
    """Validate a ``set_tags`` list; return the stored form or None if anything is invalid."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        return None
    tags: list[str] = []
    for item in value:
        if not isinstance(item, str):
            return None
        tag = item[1:] if item.startswith("#") else item
        if TAG_PATTERN.fullmatch(tag) is None:
            return None
        tags.append(tag)
    return tags


def decode_public_key(value: object) -> bytes | None:
    """Strict b64 (with padding) of exactly 32 bytes, else None."""
    if not isinstance(value, str):
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == PUBLIC_KEY_BYTES else None


def field_u32(message: dict[str, Any], key: str) -> int:
    """Read an unsigned 32-bit number the way Go's float64 decoding does: invalid → 0.

    Booleans, strings, non-finite or out-of-range numbers all read as 0, which no node has.
    Fractions are truncated toward zero.
    """
    value = message.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if isinstance(value, float):
        if not math.isfinite(value):
            return 0
        value = int(value)
    return value if 0 <= value <= U32_MAX else 0


def field_int(message: dict[str, Any], key: str) -> int | None:
    """A signed integer field (polo scores, deltas); None if missing or not a finite number."""
    value = message.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = int(value)
    # Keep scores inside SQLite's signed 64-bit range.
    return max(-(1 << 62), min(1 << 62, value))


def field_bool(message: dict[str, Any], key: str) -> bool:
    """Go decodes a missing or non-boolean field as false."""
    return message.get(key) is True


def field_str(message: dict[str, Any], key: str) -> str:
    """Go decodes a missing or non-string field as ``""``."""
    value = message.get(key)
    return value if isinstance(value, str) else ""


def real_address(listen_addr: object, source_ip: str, source_port: int) -> str:
    """The endpoint stored for a registering node (§10.4).

    TCP source IP of the registry connection plus the port of ``listen_addr``; the whole TCP
    source address when ``listen_addr`` is empty, unparsable or names port 0.
    """
    parsed = split_host_port(listen_addr) if isinstance(listen_addr, str) else None
    if parsed is None or parsed[1] == 0:
        return format_host_port(source_ip, source_port)
    return format_host_port(source_ip, parsed[1])


@dataclass(slots=True)
class _Bucket:
    tokens: float
    refilled_at: float


class RegisterRateLimiter:
    """Per-source-IP token bucket for ``register`` (§10.4): ``rate`` per ``window_seconds``.

    Continuous refill; a new IP starts with a full bucket. ``cleanup(now)`` forgets buckets idle
    for two windows (a full refill has happened by then, so forgetting them changes nothing).
    """

    def __init__(self, rate: int = 10, window_seconds: float = 60.0, max_buckets: int = 65536):
        if rate <= 0 or window_seconds <= 0:
            raise ValueError("rate and window_seconds must be positive")
        self.rate = rate
        self.window_seconds = window_seconds
        self.max_buckets = max_buckets
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, source_ip: str, now: float) -> bool:
        """Take one token for ``source_ip``; False when it has none left."""
        bucket = self._buckets.get(source_ip)
        if bucket is None:
            if len(self._buckets) >= self.max_buckets:
                self.cleanup(now)
                if len(self._buckets) >= self.max_buckets:
                    return False
            bucket = self._buckets[source_ip] = _Bucket(float(self.rate), now)
        elapsed = max(0.0, now - bucket.refilled_at)
        bucket.tokens = min(float(self.rate), bucket.tokens + elapsed * self.rate / self.window_seconds)
        bucket.refilled_at = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def cleanup(self, now: float) -> None:
        idle_before = now - 2 * self.window_seconds
        for ip in [ip for ip, b in self._buckets.items() if b.refilled_at < idle_before]:
            del self._buckets[ip]

    @property
    def tracked_sources(self) -> int:
        return len(self._buckets)
