# SPDX-License-Identifier: Apache-2.0
"""Put existing programs on the Pilot network unchanged: install pilotsock into the stdlib.

``patch_all()`` replaces, by attribute assignment (``socket-design.md`` §4):

- in ``socket``: ``socket``/``SocketType`` (the pilotsock class: kernel families behave as before,
  and a kernel-born socket that binds or connects to a virtual address turns virtual, G5) and the
  resolver functions ``getaddrinfo``, ``gethostbyname``, ``gethostbyname_ex``, ``gethostbyaddr``,
  ``getnameinfo``, ``getfqdn`` (virtual names answered, every other name handed to the original);
- in ``ssl``: ``SSLContext.sslsocket_class`` (TLS over virtual sockets, G1).

It does NOT replace ``create_connection``/``create_server`` (the stdlib versions run on the patched
class and resolver), nor ``select``, ``selectors``, asyncio or ``io``: a virtual socket has a real
fd, so they need nothing. Everything is idempotent and ``unpatch_all()`` restores the originals.

Patch before other modules capture the originals (``from socket import socket``): ``patch_all``
warns about modules that already did. ``python -m pilotsock.patch`` runs a program patched from
its first line; ``PILOTSOCK_PATCH=1`` with :func:`autoload_path` on ``PYTHONPATH`` patches every
child Python process too.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Mapping

import pilotsock.socket as _psocket
from pilotsock.client import stdlib as _original

SOCKET_NAMES = ("socket", "SocketType", "getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr",
                "getnameinfo", "getfqdn")
ENVIRONMENT_SWITCH = "PILOTSOCK_PATCH"

# The originals of what is patched, keyed by (module name, attribute), with the object holding
# them. Patching changes process-wide module state, so this record of it is process-wide as well.
_SAVED: dict[tuple[str, str], tuple[Any, Any]] = {}
COMPAT_SWITCH = "PILOTSOCK_COMPAT"


class PatchedTooLate(UserWarning):
    """Some module captured a stdlib object before it was patched; it keeps using the original."""


def _replace(module_name: str, target: Any, name: str, value: Any) -> None:
    key = (module_name, name)
    if key not in _SAVED:
        _SAVED[key] = (target, getattr(target, name))
    setattr(target, name, value)


def patch_socket() -> None:
    """Replace ``socket.socket`` and the resolver functions (idempotent)."""
    import socket

    for name in SOCKET_NAMES:
        _replace("socket", socket, name, getattr(_psocket, name))


def patch_ssl() -> None:
    """Make every ``ssl.SSLContext`` wrap virtual sockets too (idempotent)."""
    import ssl

    import pilotsock.ssl as pssl

    _replace("ssl", ssl.SSLContext, "sslsocket_class", pssl.SSLSocket)


def patch_selectors() -> None:
    """Nothing to do, by design: virtual sockets have real fds, so the stdlib selectors (and any
    selector some module froze at import, as socketserver does) already work with them."""


def patch_loopback_alias() -> None:
    """Compat mode (for running test suites written for loopback): an AF_INET socket binding
    ``127.0.0.1``/``localhost``/``''``/``0.0.0.0`` or connecting to the IPv4 loopback uses this
    node on Pilot instead, and keeps reporting ``127.0.0.1`` addresses (``socket-design.md`` §5).
    ``::1`` stays on the kernel."""
    from pilotsock.client.socket_base import SocketBase

    _replace("pilotsock.client.socket_base", SocketBase, "loopback_alias", True)


def patch_strict_loopback() -> None:
    """Strict mode: a connect from an internet socket that stays on the kernel and targets its
    loopback (``127.0.0.0/8``, ``::1``, ``localhost``) raises ``PermissionError(EACCES)``. With
    the loopback alias, this proves a test suite's traffic really went over Pilot."""
    from pilotsock.client.socket_base import SocketBase

    _replace("pilotsock.client.socket_base", SocketBase, "strict_loopback", True)


def patch_all(*, loopback_alias: bool = False, strict: bool = False) -> None:
    """``patch_socket()`` and ``patch_ssl()`` (and ``patch_loopback_alias()``,
    ``patch_strict_loopback()`` if asked), then a warning naming modules that captured the stdlib
    originals before this call (they keep the kernel-only objects)."""
    patch_socket()
    patch_ssl()
    if loopback_alias:
        patch_loopback_alias()
    if strict:
        patch_strict_loopback()
    late = captured_originals()
    if late:
        warnings.warn(f"pilotsock.patch: patched too late for {', '.join(late)}: these modules hold the "
                      "original socket objects; patch first (python -m pilotsock.patch, or PILOTSOCK_PATCH=1)",
                      PatchedTooLate, stacklevel=2)


def patch_from_environment(environ: Mapping[str, str] | None = None) -> None:
    """``patch_all`` as ``PILOTSOCK_COMPAT`` asks: ``alias`` (loopback aliasing), ``strict``
    (aliasing, and a kernel loopback connect raises), anything else: neither."""
    compat = (os.environ if environ is None else environ).get(COMPAT_SWITCH)
    patch_all(loopback_alias=compat in ("alias", "strict"), strict=compat == "strict")


def unpatch_all() -> None:
    """Restore every original (idempotent)."""
    for key, (target, original) in list(_SAVED.items()):
        setattr(target, key[1], original)
        del _SAVED[key]


def is_patched(module_name: str | None = None, name: str | None = None) -> bool:
    """Anything patched (no arguments), anything in one module, or one attribute."""
    return any((module_name is None or key[0] == module_name) and (name is None or key[1] == name)
               for key in _SAVED)


def get_original(module_name: str, name: str) -> Any:
    """The object pilotsock replaced, or the current one if that attribute is not patched."""
    if (module_name, name) in _SAVED:
        return _SAVED[(module_name, name)][1]
    module = importlib.import_module(module_name)
    return module.SSLContext.sslsocket_class if name == "sslsocket_class" else getattr(module, name)


def captured_originals() -> list[str]:
    """Modules (outside the stdlib's own socket/ssl and pilotsock) holding an original socket
    class or resolver function in their globals, e.g. after ``from socket import socket``."""
    originals = {id(getattr(_original, name)): name for name in (
        "StdSocket", "getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo")}
    found = []
    for module_name, module in list(sys.modules.items()):
        if module is None or module_name in ("socket", "_socket", "ssl", "__main__") or module_name.startswith(
                "pilotsock"):
            continue
        try:
            values = list(vars(module).values())
        except TypeError:
            continue
        if any(id(value) in originals for value in values):
            found.append(module_name)
    return sorted(found)


def autoload_path() -> Path:
    """The directory whose ``sitecustomize`` patches a Python process when ``PILOTSOCK_PATCH=1``."""
    return Path(__file__).resolve().parent / "autoload"


def patched_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (default: ours) in which Python child processes start patched."""
    env = dict(os.environ if environ is None else environ)
    env[ENVIRONMENT_SWITCH] = "1"
    entries = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    site = str(autoload_path())
    if site not in entries:
        entries.insert(0, site)
    env["PYTHONPATH"] = os.pathsep.join(entries)
    return env


def write_counters_at_exit(directory: str) -> None:
    """At exit, write this process's virtual/kernel socket counters and its command line to
    ``directory/<pid>.json`` (compat_tests proves with them which stack carried each suite)."""
    import atexit
    import json

    from pilotsock.client.socket_base import SocketBase

    def write() -> None:
        path = Path(directory) / f"{os.getpid()}.json"
        path.write_text(json.dumps({"argv": sys.argv, "pid": os.getpid(), "counters": dict(SocketBase.counters)}))

    atexit.register(write)
