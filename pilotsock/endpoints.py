# SPDX-License-Identifier: Apache-2.0
"""Kernel network endpoints as text: ``host:port``, with IPv6 hosts in brackets.

Where it sits: ring 0, shared by the registry, the daemon and the test tools (registry
``real_addr``/``listen_addr``, ``--listen``/``--endpoint``/``--registry`` arguments, the link
emulator). Virtual Pilot addresses are in :mod:`pilotsock.addresses`.
"""

from __future__ import annotations

import ipaddress


def format_host_port(host: str, port: int) -> str:
    """``host:port`` with IPv6 hosts in brackets; IPv4-mapped IPv6 is shown as IPv4."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return f"{host}:{port}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"{address.ipv4_mapped}:{port}"
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def is_loopback_host(host: str) -> bool:
    """Does ``host`` name the kernel's loopback: 127.0.0.0/8, ``::1``, IPv4-mapped loopback (an
    IPv6 scope suffix ignored) or ``localhost``?"""
    host = host.split("%", 1)[0]
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def split_host_port(text: str) -> tuple[str, int] | None:
    """Parse ``host:port`` or ``[v6]:port`` (port 0–65535); None if it does not parse."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or text[close + 1 : close + 2] != ":":
            return None
        host, port_text = text[1:close], text[close + 2 :]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            return None
    if not port_text.isdecimal() or len(port_text) > 5:
        return None
    port = int(port_text)
    return (host, port) if port <= 0xFFFF else None
