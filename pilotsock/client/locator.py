# SPDX-License-Identifier: Apache-2.0
"""Finding (and starting) the daemon for a home directory, and one-shot control exchanges.

Where it sits: ring 3, client side. A client connects to ``<home>/daemon.sock``; if nothing answers
it starts ``python -m pilotsock.daemon --home <home> --detach`` under a lock (so concurrent clients
start one daemon) and waits for it, bounded. ``PILOTSOCK_AUTOSTART=0`` disables starting.
"""

from __future__ import annotations

import array
import errno
import fcntl
import functools
import os
import socket as _stdlib_socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pilotsock.config import default_home
from pilotsock.errors import DaemonUnavailable, MalformedFrame
from pilotsock.wire.local_api import LENGTH_PREFIX, MAX_FRAME_BYTES, decode_body, encode_frame

START_TIMEOUT_SECONDS = 30.0
CONTROL_TIMEOUT_SECONDS = 10.0
_FD_SPACE = _stdlib_socket.CMSG_SPACE(4 * array.array("i").itemsize)
_RECV_FLAGS = getattr(_stdlib_socket, "MSG_CMSG_CLOEXEC", 0)


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The daemon home as an absolute path (every socket connect asks: cached per spelling)."""
    if home is not None:
        return _resolved(os.fspath(home), None, None)
    return _resolved(None, os.environ.get("PILOTSOCK_HOME"), os.environ.get("HOME"))


@functools.lru_cache(maxsize=64)
def _resolved(home: str | None, environment_home: str | None, user_home: str | None) -> Path:
    """Path.resolve() costs ~10 us; the answer depends only on these strings (and on symlinks
    that are not expected to move under a running program)."""
    return Path(home).expanduser().resolve() if home is not None else default_home().resolve()


def control_socket_path(home: str | os.PathLike[str] | None = None) -> Path:
    return resolve_home(home) / "daemon.sock"


def _connect(path: Path, timeout: float) -> _stdlib_socket.socket:
    sock = _stdlib_socket.socket(_stdlib_socket.AF_UNIX, _stdlib_socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except BaseException:
        sock.close()
        raise
    return sock


def open_control(home: str | os.PathLike[str] | None = None, *, autostart: bool | None = None,
                 timeout: float = CONTROL_TIMEOUT_SECONDS) -> _stdlib_socket.socket:
    """A connected control socket (blocking, ``timeout`` set) to the daemon of ``home``.

    Raises:
        DaemonUnavailable: no daemon and it could not be started.
    """
    resolved = resolve_home(home)
    path = resolved / "daemon.sock"
    if len(str(path).encode()) >= 108:
        raise DaemonUnavailable(errno.ENAMETOOLONG, f"control socket path too long: {path}")
    try:
        return _connect(path, timeout)
    except (FileNotFoundError, ConnectionRefusedError):
        pass
    if autostart is None:
        autostart = os.environ.get("PILOTSOCK_AUTOSTART", "1") not in ("0", "no", "false")
    if not autostart:
        raise DaemonUnavailable(errno.ECONNREFUSED, f"no pilotsock daemon at {path}")
    start_daemon(resolved)
    try:
        return _connect(path, timeout)
    except OSError as exc:
        raise DaemonUnavailable(exc.errno or errno.ECONNREFUSED, f"daemon at {path} unreachable: {exc}") from exc


# One idle control connection per daemon home, kept for the next dial or request: reusing it
# spares the daemon an accept (on the dial's critical path) and a close, and the client a socket,
# a connect and a dup2. Keyed by home; a forked child forgets them (its parent still uses them).
_IDLE: dict[str, int] = {}
os.register_at_fork(after_in_child=_IDLE.clear)


def take_control(home: str | os.PathLike[str] | None = None, *, autostart: bool | None = None,
                 timeout: float = CONTROL_TIMEOUT_SECONDS) -> _stdlib_socket.socket:
    """Like ``open_control``, but reuses the idle connection ``give_back`` kept, if it is alive."""
    idle = _IDLE.pop(str(resolve_home(home)), None)
    if idle is not None:
        sock = _stdlib_socket.socket(_stdlib_socket.AF_UNIX, _stdlib_socket.SOCK_STREAM, 0, idle)
        sock.setblocking(False)  # not the default timeout: with one, recv() would wait for data
        try:
            sock.recv(1, _stdlib_socket.MSG_PEEK)
        except BlockingIOError:  # nothing to read: the daemon still holds it open
            sock.settimeout(timeout)
            return sock
        except OSError:
            pass
        sock.close()  # end of file (the daemon restarted) or a stray frame: not reusable
    return open_control(home, autostart=autostart, timeout=timeout)


def give_back(sock: _stdlib_socket.socket, home: str | os.PathLike[str] | None = None) -> None:
    """Keep a control connection whose exchange is complete (the daemon holds nothing on it) for
    the next ``take_control``; closes it if one is kept already."""
    fd = sock.detach()
    if _IDLE.setdefault(str(resolve_home(home)), fd) != fd:
        os.close(fd)


def start_daemon(home: Path, *, timeout: float = START_TIMEOUT_SECONDS) -> None:
    """Start a detached daemon for ``home`` unless one is (or becomes) reachable."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = home / "daemon.sock"
    lock_fd = os.open(home / "spawn.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            _connect(path, 1.0).close()
            return  # someone else started it while we waited for the lock
        except OSError:
            pass
        with open(home / "daemon.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "pilotsock.daemon", "--home", str(home), "--detach"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True, start_new_session=True,
                env={name: value for name, value in os.environ.items() if name != "PILOTSOCK_PATCH"},
            )
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise DaemonUnavailable(errno.ETIMEDOUT, f"daemon for {home} did not start in {timeout:.0f} s") from None
        if code not in (0, 3):  # 3: another daemon already holds the home
            raise DaemonUnavailable(errno.ECONNREFUSED,
                                    f"daemon for {home} failed to start (exit {code}); see {home / 'daemon.log'}")
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                _connect(path, 1.0).close()
                return
            except OSError:
                time.sleep(0.02)
        raise DaemonUnavailable(errno.ECONNREFUSED, f"daemon for {home} started but {path} does not answer")
    finally:
        os.close(lock_fd)


def recv_frame(sock: _stdlib_socket.socket) -> tuple[dict[str, Any], list[int]]:
    """Read exactly one frame (and any descriptors sent with it) from a control socket.

    Raises ``ConnectionResetError`` on EOF and ``MalformedFrame`` on garbage; timeouts follow the
    socket's own timeout (``TimeoutError('timed out')``).
    """
    fds: list[int] = []
    buffer = bytearray()
    needed = 4
    while len(buffer) < needed:
        data, ancillary, _flags, _address = sock.recvmsg(needed - len(buffer), _FD_SPACE, _RECV_FLAGS)
        for level, kind, payload in ancillary:
            if level == _stdlib_socket.SOL_SOCKET and kind == _stdlib_socket.SCM_RIGHTS:
                received = array.array("i")
                received.frombytes(payload[: len(payload) - len(payload) % received.itemsize])
                fds.extend(received)
        if not data:
            for fd in fds:
                os.close(fd)
            raise ConnectionResetError(errno.ECONNRESET, "pilotsock daemon closed the control connection")
        buffer += data
        if needed == 4 and len(buffer) >= 4:
            (length,) = LENGTH_PREFIX.unpack_from(buffer, 0)
            if length > MAX_FRAME_BYTES:
                raise MalformedFrame("local_api.too_long")
            needed = 4 + length
    return decode_body(bytes(buffer[4:])), fds


def exchange(sock: _stdlib_socket.socket, message: dict[str, Any],
             timeout: float | None) -> tuple[dict[str, Any], list[int]]:
    """Send one request on a control socket and read its reply (``timeout`` bounds both)."""
    sock.settimeout(timeout)
    sock.sendall(encode_frame(message))
    return recv_frame(sock)


def request(message: dict[str, Any], *, home: str | os.PathLike[str] | None = None,
            timeout: float = CONTROL_TIMEOUT_SECONDS, autostart: bool | None = None) -> dict[str, Any]:
    """One request on a control connection of its own; returns the reply (``ok`` may be False)."""
    sock = take_control(home, autostart=autostart, timeout=timeout)
    try:
        reply, fds = exchange(sock, message, timeout)
    except BaseException:
        sock.close()
        raise
    for fd in fds:
        os.close(fd)
    give_back(sock, home)
    return reply
