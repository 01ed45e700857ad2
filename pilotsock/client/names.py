# SPDX-License-Identifier: Apache-2.0
"""Name resolution for virtual addresses: canonical text, the URL-safe alias and ``name.pilot``.

Where it sits: ring 3 (client side; a registered hostname is looked up through the daemon).
Each function answers virtual names itself and hands every other name to the stdlib unchanged,
so the C resolver's errors (``socket.gaierror`` with its EAI_* codes) stay exactly the same.
"""

from __future__ import annotations

import socket as _stdlib
from typing import Any

from pilotsock.addresses import Addr, is_pilot_name, is_virtual_host, to_virtual
from pilotsock.client import stdlib as std
from pilotsock.client.locator import request, resolve_home

AF_PILOT = 80  # unused by Linux AF_* values (AF_MAX is 46); socket-design.md §1


def resolve_virtual(host: object) -> Addr:
    """Map a host (canonical text, URL-safe alias or ``name.pilot``) to a virtual address.

    Raises ``socket.gaierror`` (the stdlib class) when the name cannot be resolved.
    """
    address = to_virtual(host)
    if address is not None:
        return address
    if isinstance(host, str) and is_pilot_name(host):
        name = host.lower().rstrip(".")[: -len(".pilot")]
        reply = request({"op": "resolve_hostname", "hostname": name})
        if reply.get("ok"):
            network, node = reply["address"]
            return Addr(network, node)
    raise _stdlib.gaierror(_stdlib.EAI_NONAME, "Name or service not known")


_OWN_ADDRESSES: dict[str, Addr] = {}  # per daemon home: a node keeps its address for its life


def own_address() -> Addr:
    """This node's virtual address (asked of the daemon once per home and process)."""
    home = str(resolve_home())
    address = _OWN_ADDRESSES.get(home)
    if address is None:
        reply = request({"op": "info"})
        if not reply.get("ok"):
            raise OSError(reply.get("detail") or "pilotsock daemon refused info")
        address = _OWN_ADDRESSES[home] = Addr.parse(str(reply["address"]))
    return address


def _virtual_host(host: object) -> str | None:
    """``host`` as text when it names a virtual node (without resolving it yet), else None."""
    if isinstance(host, (bytes, bytearray)):
        try:
            host = bytes(host).decode("ascii")
        except UnicodeDecodeError:
            return None
    if isinstance(host, str) and is_virtual_host(host):
        return host
    return None


def _kernel_ports(port: Any, type: int, proto: int, flags: int) -> list[tuple[int, int, int]]:
    """(type, proto, port) as the C resolver parses ``port`` for these hints: service names,
    numeric strings, wrapping of large integers and every error stay exactly the stdlib's."""
    flags &= ~(_stdlib.AI_CANONNAME | _stdlib.AI_PASSIVE)
    found = std.getaddrinfo("127.0.0.1", port, _stdlib.AF_INET, type, proto, flags | _stdlib.AI_NUMERICHOST)
    return [(int(kind), number, int(address[1])) for _, kind, number, _, address in found
            if kind in (_stdlib.SOCK_STREAM, _stdlib.SOCK_DGRAM)]


def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,
                flags: int = 0) -> list[tuple[Any, Any, int, str, Any]]:
    """``socket.getaddrinfo`` that answers virtual names itself; every other host goes to the
    stdlib unchanged.

    A virtual name yields ``AF_PILOT`` entries when the caller asks for ``AF_PILOT``, and
    otherwise entries of the family asked for (``AF_INET`` for AF_UNSPEC) holding the canonical
    virtual address: libraries check the families they get (aiohttp asserts AF_INET/AF_INET6),
    and the kernel socket they then create turns virtual when it connects or binds (G5).
    """
    text = _virtual_host(host)
    if text is None or family not in (_stdlib.AF_UNSPEC, _stdlib.AF_INET, _stdlib.AF_INET6, AF_PILOT):
        return std.getaddrinfo(host, port, family, type, proto, flags)
    ports = _kernel_ports(port, type, proto, flags)
    canonical = str(resolve_virtual(text))
    canonname = text if flags & _stdlib.AI_CANONNAME else ""
    reported: Any = AF_PILOT if family == AF_PILOT else _stdlib.AddressFamily(family or _stdlib.AF_INET)
    entries = []
    for index, (kind, number, service) in enumerate(ports):
        address = (canonical, service, 0, 0) if reported == _stdlib.AF_INET6 else (canonical, service)
        entries.append((reported, _stdlib.SocketKind(kind), number if reported != AF_PILOT else 0,
                        canonname if index == 0 else "", address))
    return entries


def gethostbyname(hostname: str) -> str:
    text = _virtual_host(hostname)
    return str(resolve_virtual(text)) if text is not None else std.gethostbyname(hostname)


def gethostbyname_ex(hostname: str) -> tuple[str, list[str], list[str]]:
    text = _virtual_host(hostname)
    if text is None:
        return std.gethostbyname_ex(hostname)
    return text, [], [str(resolve_virtual(text))]


def gethostbyaddr(ip_address: str) -> tuple[str, list[str], list[str]]:
    """A virtual address's name is its URL-safe alias, which resolves back to it."""
    text = _virtual_host(ip_address)
    if text is None:
        return std.gethostbyaddr(ip_address)
    address = resolve_virtual(text)
    return address.alias(), [], [str(address)]


def getnameinfo(sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
    host = sockaddr[0] if isinstance(sockaddr, tuple) and sockaddr else None
    text = _virtual_host(host)
    if text is None:
        return std.getnameinfo(sockaddr, flags)
    if len(sockaddr) != 2:
        raise TypeError("getnameinfo() argument 1 must be a tuple")
    service = std.getnameinfo(("127.0.0.1", sockaddr[1]), flags | _stdlib.NI_NUMERICHOST)[1]
    address = resolve_virtual(text)
    return (str(address) if flags & _stdlib.NI_NUMERICHOST else address.alias()), service


def getfqdn(name: str = "") -> str:
    text = _virtual_host(name)
    return resolve_virtual(text).alias() if text is not None else std.getfqdn(name)
