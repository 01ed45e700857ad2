# SPDX-License-Identifier: Apache-2.0
"""The ErrorCode table: daemon error codes -> errno and exception class (socket-design.md §6)."""

from __future__ import annotations

import errno
import os

import pytest

from pilotsock.errors import (
    DaemonUnavailable,
    ErrorCode,
    MalformedFrame,
    NoSuchNode,
    PeerUnreachable,
    PilotError,
    ProtocolViolation,
    code_for_errno,
    errno_of,
    make_error,
)

NON_OK = [code for code in ErrorCode if code is not ErrorCode.OK]

EXPECTED = {
    ErrorCode.REFUSED: (errno.ECONNREFUSED, ConnectionRefusedError),
    ErrorCode.TIMED_OUT: (errno.ETIMEDOUT, TimeoutError),
    ErrorCode.RESET: (errno.ECONNRESET, ConnectionResetError),
    ErrorCode.UNREACHABLE: (errno.EHOSTUNREACH, PeerUnreachable),
    ErrorCode.ADDRESS_IN_USE: (errno.EADDRINUSE, OSError),
    ErrorCode.INVALID_ARGUMENT: (errno.EINVAL, OSError),
    ErrorCode.NOT_CONNECTED: (errno.ENOTCONN, OSError),
    ErrorCode.MESSAGE_TOO_LONG: (errno.EMSGSIZE, OSError),
    ErrorCode.NO_SUCH_NODE: (errno.EHOSTUNREACH, NoSuchNode),
    ErrorCode.BAD_REQUEST: (errno.EPROTO, PilotError),
    ErrorCode.SHUTTING_DOWN: (errno.ESHUTDOWN, DaemonUnavailable),
    ErrorCode.ADDRESS_NOT_AVAILABLE: (errno.EADDRNOTAVAIL, OSError),
    ErrorCode.NOT_SUPPORTED: (errno.EOPNOTSUPP, OSError),
    ErrorCode.ALREADY_CONNECTED: (errno.EISCONN, OSError),
    ErrorCode.INTERNAL: (errno.EIO, PilotError),
}


def test_table_is_complete():
    assert set(EXPECTED) == set(NON_OK)


@pytest.mark.parametrize("code", NON_OK, ids=lambda c: c.name)
def test_make_error_class_and_errno(code):
    number, cls = EXPECTED[code]
    exc = make_error(code)
    assert type(exc) is cls
    assert exc.errno == number == errno_of(code)
    assert exc.strerror == os.strerror(number)
    assert exc.args == (number, os.strerror(number))
    assert make_error(int(code)).__class__ is cls  # plain int codes off the wire work too


@pytest.mark.parametrize("code", NON_OK, ids=lambda c: c.name)
def test_code_round_trip_through_errno(code):
    exc = make_error(code)
    expected = ErrorCode.UNREACHABLE if code is ErrorCode.NO_SUCH_NODE else code  # shared EHOSTUNREACH
    assert code_for_errno(exc.errno) is expected


def test_refused_is_exactly_the_stdlib_exception():
    exc = make_error(ErrorCode.REFUSED)
    assert type(exc) is ConnectionRefusedError
    assert exc.errno == 111 == errno.ECONNREFUSED
    assert exc.strerror == "Connection refused"
    assert str(exc) == "[Errno 111] Connection refused"
    assert repr(exc) == repr(ConnectionRefusedError(111, "Connection refused"))


def test_builtin_errors_ignore_detail_pilot_errors_keep_it():
    assert make_error(ErrorCode.REFUSED, "port 80").strerror == "Connection refused"
    exc = make_error(ErrorCode.UNREACHABLE, "no route to node 7")
    assert exc.errno == errno.EHOSTUNREACH and "no route to node 7" in exc.strerror
    assert isinstance(exc, ConnectionError) and isinstance(exc, PilotError)


def test_subclass_relations():
    assert issubclass(NoSuchNode, ConnectionError) and issubclass(DaemonUnavailable, ConnectionError)
    assert issubclass(MalformedFrame, PilotError) and issubclass(PilotError, OSError)
    with pytest.raises(OSError):
        raise make_error(ErrorCode.NOT_CONNECTED)


def test_ok_is_not_an_error():
    with pytest.raises(ValueError):
        make_error(ErrorCode.OK)
    with pytest.raises(ValueError):
        make_error(0)


@pytest.mark.parametrize("unknown", [16, 255, 9999, -1])
def test_unknown_code_is_internal(unknown):
    exc = make_error(unknown)
    assert type(exc) is PilotError and exc.errno == errno.EIO


def test_unknown_errno_maps_to_internal():
    assert code_for_errno(errno.ENOENT) is ErrorCode.INTERNAL
    assert code_for_errno(0) is ErrorCode.INTERNAL


def test_malformed_frame_and_protocol_violation():
    exc = MalformedFrame("packet.bad_crc")
    assert exc.errno == errno.EBADMSG and exc.reason == "packet.bad_crc"
    assert "packet.bad_crc" in str(exc)
    violation = ProtocolViolation("bad state", remote=False)
    assert violation.errno == errno.EPROTO and violation.remote is False
