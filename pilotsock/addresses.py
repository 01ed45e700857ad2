# SPDX-License-Identifier: Apache-2.0
"""Virtual addresses: the 48-bit ``N:NNNN.HHHH.LLLL`` form, its URL-safe alias, and routing.

Where it sits: ring 0, shared by codecs, machines, drivers and the socket module.
Implements ``wire.md`` §2 (text and binary forms, every rejected input) and ``socket-design.md``
§5 (URL-safe alias ``N-NNNN-HHHH-LLLL.pilot`` and the single routing decision).
"""

from __future__ import annotations

import re
import struct
from typing import NamedTuple

MAX_NETWORK = 0xFFFF
MAX_NODE = 0xFFFFFFFF
BROADCAST_NODE = 0xFFFFFFFF
ALIAS_SUFFIX = ".pilot"

# [u16 network][u32 node]
ADDRESS_BINARY = struct.Struct(">HI")

_GROUP = re.compile(r"[0-9A-Fa-f]{4}\Z")
_DECIMAL = re.compile(r"[0-9]+\Z")


class Addr(NamedTuple):
    """A virtual node address. Immutable, hashable, cheap (a tuple of two ints)."""

    network: int
    node: int

    def __str__(self) -> str:
        return format_address(self.network, self.node)

    @property
    def is_broadcast(self) -> bool:
        return self.node == BROADCAST_NODE

    @property
    def is_zero(self) -> bool:
        return self.network == 0 and self.node == 0

    def to_bytes(self) -> bytes:
        return ADDRESS_BINARY.pack(self.network, self.node)

    def alias(self) -> str:
        """URL-safe spelling, e.g. ``0-0000-0000-0005.pilot`` (lowercase)."""
        return (
            f"{self.network}-{self.network:04x}-{self.node >> 16:04x}-{self.node & 0xFFFF:04x}"
            f"{ALIAS_SUFFIX}"
        )

    @classmethod
    def parse(cls, text: str) -> Addr:
        return parse_address(text)

    @classmethod
    def from_bytes(cls, data: bytes) -> Addr:
        if len(data) != ADDRESS_BINARY.size:
            raise ValueError(f"a binary address is {ADDRESS_BINARY.size} bytes, got {len(data)}")
        network, node = ADDRESS_BINARY.unpack(data)
        return cls(network, node)


ZERO = Addr(0, 0)


def format_address(network: int, node: int) -> str:
    """Canonical text: decimal network, then network, node-high, node-low as uppercase hex."""
    if not 0 <= network <= MAX_NETWORK:
        raise ValueError(f"network {network} out of range")
    if not 0 <= node <= MAX_NODE:
        raise ValueError(f"node {node} out of range")
    return f"{network}:{network:04X}.{node >> 16:04X}.{node & 0xFFFF:04X}"


def parse_address(text: str) -> Addr:
    """Parse ``N:NNNN.HHHH.LLLL``. Raises ``ValueError`` with the reason for any invalid input."""
    if not isinstance(text, str):
        raise TypeError(f"address must be str, not {type(text).__name__}")
    left, sep, right = text.partition(":")
    if not sep:
        raise ValueError(f"invalid Pilot address {text!r}: missing ':'")
    if not _DECIMAL.match(left):
        raise ValueError(f"invalid Pilot address {text!r}: network must be decimal digits")
    network = int(left)
    if network > MAX_NETWORK:
        raise ValueError(f"invalid Pilot address {text!r}: network {network} exceeds 65535")
    groups = right.split(".")
    if len(groups) != 3:
        raise ValueError(f"invalid Pilot address {text!r}: expected 3 groups after ':'")
    for group in groups:
        if not _GROUP.match(group):
            raise ValueError(f"invalid Pilot address {text!r}: groups are 4 hex digits")
    if int(groups[0], 16) != network:
        raise ValueError(f"invalid Pilot address {text!r}: first group must repeat the network")
    return Addr(network, (int(groups[1], 16) << 16) | int(groups[2], 16))


def parse_alias(host: str) -> Addr:
    """Parse the URL-safe alias ``N-NNNN-HHHH-LLLL.pilot`` (case-insensitive)."""
    lowered = host.lower()
    if lowered.endswith("."):
        lowered = lowered[:-1]
    if not lowered.endswith(ALIAS_SUFFIX):
        raise ValueError(f"invalid Pilot alias {host!r}: must end with {ALIAS_SUFFIX}")
    body = lowered[: -len(ALIAS_SUFFIX)]
    parts = body.split("-")
    if len(parts) != 4:
        raise ValueError(f"invalid Pilot alias {host!r}: expected N-NNNN-HHHH-LLLL.pilot")
    return parse_address(f"{parts[0]}:{parts[1]}.{parts[2]}.{parts[3]}")


def parse_socket_address(text: str) -> tuple[Addr, int]:
    """Parse ``ADDR:PORT`` (split at the last ``:``)."""
    address, sep, port_text = text.rpartition(":")
    if not sep or not _DECIMAL.match(port_text):
        raise ValueError(f"invalid Pilot socket address {text!r}")
    port = int(port_text)
    if port > 0xFFFF:
        raise ValueError(f"invalid Pilot socket address {text!r}: port out of range")
    return parse_address(address), port


def parse_node_argument(text: str) -> Addr:
    """Command-line input: a full address, an alias, or a bare decimal node ID (network 0)."""
    if _DECIMAL.match(text):
        node = int(text)
        if node > MAX_NODE:
            raise ValueError(f"node ID {node} out of range")
        return Addr(0, node)
    return to_virtual(text) or parse_address(text)


def to_virtual(host: object) -> Addr | None:
    """The routing decision: return the virtual address ``host`` names, or None for the kernel.

    Accepts the canonical text form and the URL-safe alias. Hostnames registered with the
    registry (``name.pilot``) need a registry lookup and are handled by the resolver, not here.
    """
    if isinstance(host, Addr):
        return host
    if not isinstance(host, str) or not host:
        return None
    if ":" in host and "." in host:
        try:
            return parse_address(host)
        except ValueError:
            return None
    lowered = host.lower().rstrip(".")
    if lowered.endswith(ALIAS_SUFFIX) and lowered.count("-") == 3:
        try:
            return parse_alias(lowered)
        except ValueError:
            return None
    return None


def is_pilot_name(host: object) -> bool:
    """True for anything under the ``.pilot`` pseudo-domain (alias or registered hostname)."""
    return isinstance(host, str) and host.lower().rstrip(".").endswith(ALIAS_SUFFIX)


def is_virtual_host(host: object) -> bool:
    """True when ``host`` names a virtual node in any spelling (canonical text, URL-safe alias,
    registered ``name.pilot``); hostnames are checked, not resolved."""
    return to_virtual(host) is not None or is_pilot_name(host)
