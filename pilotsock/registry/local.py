# SPDX-License-Identifier: Apache-2.0
"""The per-user shared local registry: find it, or start exactly one (driver).

Where it sits: daemon start-up → **ensure_local_registry(dir)** → ("host:port" registry,
"host:port" beacon) → ``RegistryClient`` / beacon Discover.

Files in ``directory`` (created with mode 0700):

- ``registry.json`` — state file written by the registry once bound:
  ``{"registry": "127.0.0.1:P", "beacon": "127.0.0.1:Q", "pid": N}``.
- ``registry.lock`` — ``flock``-ed while a caller checks for / starts a registry, so concurrent
  daemons start at most one.
- ``registry.db`` — the SQLite store; ``registry.log`` — the registry's stdout and stderr.

The registry is started fully detached (its own session, via a short-lived launcher process so
it is never our child: no zombie and no ``ResourceWarning`` when it outlives us) and listens on
loopback only with kernel-chosen ports.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped,unused-ignore]

import pilotsock
from pilotsock.endpoints import split_host_port
from pilotsock.errors import PilotError

STATE_FILE_NAME = "registry.json"
LOCK_FILE_NAME = "registry.lock"
DB_FILE_NAME = "registry.db"
LOG_FILE_NAME = "registry.log"
POLL_INTERVAL_SECONDS = 0.05
PROBE_TIMEOUT_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 2.0

# Runs in a throw-away interpreter: start the registry in a new session, print its pid, exit.
# argv: [log_file, command...]
_LAUNCHER = """
import os, subprocess, sys
with open(sys.argv[1], "ab") as log:
    child = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             start_new_session=True, close_fds=True)
sys.stdout.write(str(child.pid))
sys.stdout.flush()
os._exit(0)
"""


class LocalRegistryError(PilotError):
    """The local registry could not be found or started."""


def _error(number: int, detail: str) -> LocalRegistryError:
    return LocalRegistryError(number, f"{os.strerror(number)} (pilot: local registry {detail})")


def ensure_local_registry(directory: Path, *, timeout: float = 10.0) -> tuple[str, str]:
    """Return ``("host:port" registry, "host:port" beacon)`` of the shared local registry.

    Reuses the registry named by ``directory/registry.json`` if its process is alive and it
    accepts a TCP connection; otherwise starts one (under the lock) and waits for it.

    Raises:
        LocalRegistryError: no registry was reachable within ``timeout`` seconds (errno
            ``ETIMEDOUT``) or the started process exited (errno ``ECHILD``); the message points
            at ``registry.log``.
    """
    deadline = time.monotonic() + timeout
    directory = Path(directory)
    _make_private_directory(directory)
    state_path = directory / STATE_FILE_NAME
    found = _running_registry(state_path)
    if found is not None:
        return found
    with _exclusive_lock(directory / LOCK_FILE_NAME, deadline):
        found = _running_registry(state_path)  # another caller may have started it meanwhile
        if found is not None:
            return found
        # Stale: its process is gone, or alive but not answering. A hung registry on our
        # database is stopped first so that two never serve the same files.
        stale = read_state_file(state_path)
        if stale is not None:
            _stop_registry_process(stale[2], directory / DB_FILE_NAME)
        with contextlib.suppress(FileNotFoundError):
            state_path.unlink()
        pid = _spawn_registry(directory, deadline)
        try:
            return _wait_until_ready(state_path, pid, directory / LOG_FILE_NAME, deadline)
        except LocalRegistryError:
            _stop_registry_process(pid, directory / DB_FILE_NAME)
            raise


def _make_private_directory(directory: Path) -> None:
    if not directory.is_dir():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask


def read_state_file(state_path: Path) -> tuple[str, str, int] | None:
    """Parse the state file; None if missing or malformed."""
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict):
        return None
    registry, beacon, pid = state.get("registry"), state.get("beacon"), state.get("pid")
    if not (isinstance(registry, str) and isinstance(beacon, str) and isinstance(pid, int)):
        return None
    return registry, beacon, pid


def _running_registry(state_path: Path, expected_pid: int | None = None) -> tuple[str, str] | None:
    state = read_state_file(state_path)
    if state is None:
        return None
    registry, beacon, pid = state
    if expected_pid is not None and pid != expected_pid:
        return None
    if not _process_alive(pid) or not _accepts_connection(registry):
        return None
    return registry, beacon


def _process_alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except (psutil.Error, ValueError):
        return False


def _stop_registry_process(pid: int, db_path: Path) -> None:
    """SIGTERM (then SIGKILL) ``pid`` if it is a registry serving ``db_path``; else do nothing.

    The command-line check guards against a recycled pid naming an unrelated process.
    """
    try:
        process = psutil.Process(pid)
        command = process.cmdline()
        if "pilotsock.registry" not in command or str(db_path) not in command:
            return
        process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while _process_alive(pid):
            if time.monotonic() >= deadline:
                process.kill()
                return
            time.sleep(POLL_INTERVAL_SECONDS)
    except (psutil.Error, ValueError):
        return


def _accepts_connection(address: str) -> bool:
    parsed = split_host_port(address)
    if parsed is None:
        return False
    try:
        with socket.create_connection(parsed, timeout=PROBE_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _exclusive_lock(path: Path, deadline: float) -> Iterator[None]:
    """``flock(LOCK_EX)`` on ``path``, polling so that the wait is bounded by ``deadline``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _error(errno.ETIMEDOUT, f"lock {path} is held by another process") from None
                time.sleep(POLL_INTERVAL_SECONDS)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _child_environment() -> dict[str, str]:
    """Make sure the registry imports this very ``pilotsock`` package, installed or not."""
    environment = dict(os.environ)
    package_parent = str(Path(pilotsock.__file__).resolve().parent.parent)
    existing = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = (
        package_parent if not existing else os.pathsep.join([package_parent, existing])
    )
    return environment


def _spawn_registry(directory: Path, deadline: float) -> int:
    command = [
        sys.executable,
        "-m",
        "pilotsock.registry",
        "--listen",
        "127.0.0.1:0",
        "--beacon",
        "127.0.0.1:0",
        "--db",
        str(directory / DB_FILE_NAME),
        "--state-file",
        str(directory / STATE_FILE_NAME),
    ]
    try:
        launched = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(directory / LOG_FILE_NAME), *command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=directory,
            env=_child_environment(),
            timeout=max(0.1, deadline - time.monotonic()),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise _error(errno.ETIMEDOUT, "launcher did not finish in time") from exc
    except OSError as exc:
        raise _error(exc.errno or errno.EIO, f"could not be started: {exc}") from exc
    try:
        return int(launched.stdout.decode().strip())
    except ValueError:
        stderr = launched.stderr.decode(errors="replace").strip()
        raise _error(errno.EIO, f"launcher failed: {stderr or launched.returncode}") from None


def _wait_until_ready(state_path: Path, pid: int, log_path: Path, deadline: float) -> tuple[str, str]:
    while True:
        found = _running_registry(state_path, expected_pid=pid)
        if found is not None:
            return found
        if not _process_alive(pid):
            raise _error(errno.ECHILD, f"process {pid} exited during start-up; see {log_path}")
        if time.monotonic() >= deadline:
            raise _error(errno.ETIMEDOUT, f"process {pid} not ready in time; see {log_path}")
        time.sleep(POLL_INTERVAL_SECONDS)
