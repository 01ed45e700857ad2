# SPDX-License-Identifier: Apache-2.0
"""Real registry and daemon processes for tests and benchmarks, on loopback, bounded in time.

Every helper starts a separate ``python -m pilotsock.<component>`` process with its own home or
database, waits (bounded) until it is ready, and stops it with SIGTERM then SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pilotsock.daemon.home import read_state

READY_TIMEOUT_SECONDS = 20.0


def wait_for(predicate: Any, timeout: float, what: str, process: subprocess.Popen[Any] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before it was ready")
        time.sleep(0.02)
    raise TimeoutError(f"{what} not ready within {timeout:.0f} s")


def _stop(process: subprocess.Popen[bytes], timeout: float) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return process.returncode


@dataclass
class RegistryProcess:
    directory: Path
    process: subprocess.Popen[bytes]
    address: str
    beacon: str
    db: Path

    def stop(self, timeout: float = 5.0) -> int:
        return _stop(self.process, timeout)


def start_registry(directory: Path, *, listen: str = "127.0.0.1:0", beacon: str = "127.0.0.1:0",
                   db: Path | None = None) -> RegistryProcess:
    directory.mkdir(parents=True, exist_ok=True)
    db = db or directory / "registry.db"
    state = directory / "registry.json"
    if state.exists():
        state.unlink()
    log = open(directory / "registry.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "pilotsock.registry", "--listen", listen, "--beacon", beacon, "--db", str(db),
         "--state-file", str(state)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log,
    )
    log.close()
    data = wait_for(lambda: read_state(state), READY_TIMEOUT_SECONDS, "registry", process)
    return RegistryProcess(directory, process, data["registry"], data["beacon"], db)


@dataclass
class DaemonProcess:
    home: Path
    process: subprocess.Popen[bytes]
    info: dict[str, Any] = field(default_factory=dict)
    registry: str | None = None
    extra_args: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return str(self.info["address"])

    @property
    def alias(self) -> str:
        return str(self.info["alias"])

    @property
    def env(self) -> dict[str, str]:
        """Environment for a client program of this daemon."""
        env = dict(os.environ)
        env["PILOTSOCK_HOME"] = str(self.home)
        env["PILOTSOCK_AUTOSTART"] = "0"
        return env

    def stop(self, timeout: float = 10.0) -> int:
        return _stop(self.process, timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


def start_daemon(home: Path, registry: str | None, *, extra_args: list[str] | None = None,
                 env: dict[str, str] | None = None) -> DaemonProcess:
    home.mkdir(parents=True, exist_ok=True)
    state = home / "daemon.json"
    if state.exists():
        state.unlink()
    args = ["--home", str(home)]
    if registry:
        args += ["--registry", registry]
    args += extra_args or []
    log = open(home / "daemon.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "pilotsock.daemon", *args], stdin=subprocess.DEVNULL,
                               stdout=log, stderr=log, env=env)
    log.close()
    info = wait_for(lambda: read_state(state), READY_TIMEOUT_SECONDS, f"daemon in {home}", process)
    return DaemonProcess(home, process, info, registry, list(extra_args or []))


def restart_daemon(daemon: DaemonProcess) -> DaemonProcess:
    """Stop ``daemon`` and start a new process on the same home with the same arguments."""
    daemon.stop()
    return start_daemon(daemon.home, daemon.registry, extra_args=daemon.extra_args)
