# SPDX-License-Identifier: Apache-2.0
"""Exceptions and the one table that maps daemon error codes to errno and exception classes.

Where it sits: shared by every ring. Codecs raise only :class:`MalformedFrame`; machines raise
:class:`ProtocolViolation`; the daemon reports failures to clients as an :class:`ErrorCode`, and the
client turns the code back into the same ``OSError`` subclass the stdlib would raise
(``socket-design.md`` §6).

Rules (``style.md`` §4): errno first, message from ``os.strerror``; Pilot-specific classes inherit
both :class:`PilotError` and the matching builtin, because subclasses of ``OSError`` do not get
PEP 3151 remapping.
"""

from __future__ import annotations

import enum
import errno as _errno
import os


class PilotError(OSError):
    """Root of everything pilotsock raises that is specific to Pilot."""


class MalformedFrame(PilotError):
    """Untrusted bytes could not be decoded. The only exception a ``decode_*`` function raises."""

    def __init__(self, reason: str) -> None:
        super().__init__(_errno.EBADMSG, f"{os.strerror(_errno.EBADMSG)} (pilot: {reason})")
        self.reason = reason


class ProtocolViolation(PilotError):
    """A peer (``remote``) or our own caller (``local``) broke the protocol rules of a machine."""

    def __init__(self, reason: str, *, remote: bool = True) -> None:
        super().__init__(_errno.EPROTO, f"{os.strerror(_errno.EPROTO)} (pilot: {reason})")
        self.reason = reason
        self.remote = remote


class PeerUnreachable(PilotError, ConnectionError):
    """No path to the peer node (registry cannot resolve it, or no tunnel could be built)."""


class NoSuchNode(PilotError, ConnectionError):
    """The registry does not know the node."""


class DaemonUnavailable(PilotError, ConnectionError):
    """The local daemon could not be reached or started."""


class ErrorCode(enum.IntEnum):
    """Error codes carried by the local API (daemon -> client)."""

    OK = 0
    REFUSED = 1
    TIMED_OUT = 2
    RESET = 3
    UNREACHABLE = 4
    ADDRESS_IN_USE = 5
    INVALID_ARGUMENT = 6
    NOT_CONNECTED = 7
    MESSAGE_TOO_LONG = 8
    NO_SUCH_NODE = 9
    BAD_REQUEST = 10
    SHUTTING_DOWN = 11
    ADDRESS_NOT_AVAILABLE = 12
    NOT_SUPPORTED = 13
    ALREADY_CONNECTED = 14
    INTERNAL = 15


# code -> (errno, exception class)
_TABLE: dict[ErrorCode, tuple[int, type[OSError]]] = {
    ErrorCode.REFUSED: (_errno.ECONNREFUSED, ConnectionRefusedError),
    ErrorCode.TIMED_OUT: (_errno.ETIMEDOUT, TimeoutError),
    ErrorCode.RESET: (_errno.ECONNRESET, ConnectionResetError),
    ErrorCode.UNREACHABLE: (_errno.EHOSTUNREACH, PeerUnreachable),
    ErrorCode.ADDRESS_IN_USE: (_errno.EADDRINUSE, OSError),
    ErrorCode.INVALID_ARGUMENT: (_errno.EINVAL, OSError),
    ErrorCode.NOT_CONNECTED: (_errno.ENOTCONN, OSError),
    ErrorCode.MESSAGE_TOO_LONG: (_errno.EMSGSIZE, OSError),
    ErrorCode.NO_SUCH_NODE: (_errno.EHOSTUNREACH, NoSuchNode),
    ErrorCode.BAD_REQUEST: (_errno.EPROTO, PilotError),
    ErrorCode.SHUTTING_DOWN: (_errno.ESHUTDOWN, DaemonUnavailable),
    ErrorCode.ADDRESS_NOT_AVAILABLE: (_errno.EADDRNOTAVAIL, OSError),
    ErrorCode.NOT_SUPPORTED: (_errno.EOPNOTSUPP, OSError),
    ErrorCode.ALREADY_CONNECTED: (_errno.EISCONN, OSError),
    ErrorCode.INTERNAL: (_errno.EIO, PilotError),
}

_BY_ERRNO: dict[int, ErrorCode] = {}
for _code, (_num, _cls) in _TABLE.items():
    _BY_ERRNO.setdefault(_num, _code)


def errno_of(code: ErrorCode) -> int:
    """Return the errno a client reports for ``code``."""
    return _TABLE[code][0]


def code_for_errno(number: int) -> ErrorCode:
    """Return the daemon error code for an errno (``INTERNAL`` if none fits)."""
    return _BY_ERRNO.get(number, ErrorCode.INTERNAL)


def make_error(code: ErrorCode | int, detail: str | None = None) -> OSError:
    """Build the exception a client raises for a daemon error code.

    Builtin classes are created through ``OSError(errno, strerror)`` so that the result is the
    exact class the stdlib raises (``ConnectionRefusedError(111, 'Connection refused')``).
    """
    try:
        code = ErrorCode(code)
    except ValueError:
        code = ErrorCode.INTERNAL
    if code is ErrorCode.OK:
        raise ValueError("ErrorCode.OK is not an error")
    number, cls = _TABLE[code]
    message = os.strerror(number)
    if issubclass(cls, PilotError):
        if detail:
            message = f"{message} (pilot: {detail})"
        return cls(number, message)
    if code is ErrorCode.TIMED_OUT:
        # The stdlib raises TimeoutError('timed out') for socket timeouts, but a connect that
        # failed with ETIMEDOUT in the kernel is TimeoutError(110, 'Connection timed out').
        return TimeoutError(number, message)
    return OSError(number, message)
