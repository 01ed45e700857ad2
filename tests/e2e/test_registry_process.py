# SPDX-License-Identifier: Apache-2.0
"""``python -m pilotsock.registry`` as a real process on loopback, and ``ensure_local_registry``.

Every wait is bounded; every process started here is killed in teardown.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import pilotsock
from pilotsock.endpoints import split_host_port
from pilotsock.identity import Identity
from pilotsock.registry.client import RegistryClient, RegistryError, request_sync
from pilotsock.registry.local import LocalRegistryError, ensure_local_registry, read_state_file

pytestmark = pytest.mark.timeout(60)

REPO_ROOT = str(Path(pilotsock.__file__).resolve().parent.parent)
START_TIMEOUT_SECONDS = 10.0


def _environment() -> dict[str, str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, environment.get("PYTHONPATH")) if p)
    return environment


class RegistryProcess:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state_path = directory / "state.json"
        self.db_path = directory / "registry.db"
        self.process: subprocess.Popen[str] | None = None
        self.registry: tuple[str, int] = ("", 0)
        self.beacon: tuple[str, int] = ("", 0)
        self.first_line = ""

    def start(self) -> None:
        self.state_path.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pilotsock.registry",
                "--listen",
                "127.0.0.1:0",
                "--beacon",
                "127.0.0.1:0",
                "--db",
                str(self.db_path),
                "--state-file",
                str(self.state_path),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_environment(),
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while read_state_file(self.state_path) is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"registry did not start: {self.process.stderr.read()}")
            time.sleep(0.02)
        registry, beacon, pid = read_state_file(self.state_path)  # type: ignore[misc]
        assert pid == self.process.pid
        self.registry = split_host_port(registry)  # type: ignore[assignment]
        self.beacon = split_host_port(beacon)  # type: ignore[assignment]
        assert self.process.stdout is not None
        self.first_line = self.process.stdout.readline().strip()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(5)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        if self.process is not None:
            for stream in (self.process.stdout, self.process.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    process = RegistryProcess(tmp_path)
    process.start()
    yield process
    process.kill()


def _discover(beacon: tuple[str, int], node_id: int, *, garbage: bytes = b"") -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.bind(("127.0.0.1", 0))
        if garbage:
            sock.sendto(garbage, beacon)
        sock.sendto(b"\x01" + node_id.to_bytes(4, "big"), beacon)
        reply, _ = sock.recvfrom(2048)
        return reply


def _raw_send(address: tuple[str, int], data: bytes) -> bytes:
    """Send bytes on a fresh connection; return what the server sends before closing."""
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
        return b"".join(chunks)


async def _session(registry: RegistryProcess, alice: Identity, bob: Identity) -> dict[str, Any]:
    async with RegistryClient(*registry.registry) as client:
        a = await client.register(alice, "0.0.0.0:4001", hostname="alice")
        b = await client.register(bob, "0.0.0.0:4002")
        a_id, b_id = a["node_id"], b["node_id"]
        assert (a_id, b_id) == (1, 2) and a["hostname"] == "alice"
        lookup = await client.lookup(a_id)
        assert lookup["public_key"] == alice.public_key_b64 and "real_addr" not in lookup
        with pytest.raises(RegistryError):
            await client.resolve(bob, b_id, a_id)  # alice is private, no trust yet
        await client.report_trust(alice, a_id, b_id)
        assert (await client.resolve(bob, b_id, a_id))["real_addr"] == "127.0.0.1:4001"
        await client.set_visibility(bob, b_id, True)
        assert (await client.resolve(alice, a_id, b_id))["real_addr"] == "127.0.0.1:4002"
        assert (await client.heartbeat(alice, a_id))["type"] == "heartbeat_ok"
        beacons = (await client.beacon_list())["beacons"]
        assert beacons == [{"id": 1, "addr": f"127.0.0.1:{registry.beacon[1]}"}]
        return {"alice": a_id, "bob": b_id}


def test_registry_process_end_to_end(registry: RegistryProcess) -> None:
    host, port = registry.registry
    beacon_host, beacon_port = registry.beacon
    assert registry.first_line == (
        f"pilotsock registry listening on {host}:{port} beacon {beacon_host}:{beacon_port}"
    )
    alice, bob = Identity.generate(), Identity.generate()
    ids = asyncio.run(asyncio.wait_for(_session(registry, alice, bob), 20))

    # Garbage and an oversize length prefix close only that connection.
    assert _raw_send(registry.registry, b"\x16\x03\x01 definitely not json") == b""
    assert _raw_send(registry.registry, struct.pack(">I", (1 << 20) + 1) + b"{}") == b""
    assert request_sync(host, port, {"type": "lookup", "node_id": ids["alice"]})["type"] == ("lookup_ok")

    # Garbage UDP does not stop the beacon.
    reply = _discover(registry.beacon, 0, garbage=b"\xde\xad\xbe\xef" * 10)
    assert reply[:6] == b"\x02\x04\x7f\x00\x00\x01"

    # SIGTERM is a clean exit; a restart on the same database keeps IDs, hostnames, trust.
    assert registry.stop() == 0
    assert not registry.state_path.exists()
    registry.start()
    host, port = registry.registry
    again = request_sync(
        host,
        port,
        {"type": "register", "listen_addr": ":4001", "public_key": alice.public_key_b64},
        check=True,
    )
    assert again["node_id"] == ids["alice"] and again["hostname"] == "alice"
    by_name = request_sync(host, port, {"type": "resolve_hostname", "hostname": "alice"})
    assert by_name["node_id"] == ids["alice"]
    assert registry.stop(signal.SIGINT) == 0


def _registry_processes(db_path: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if str(db_path) in cmdline and "pilotsock.registry" in cmdline:
            found.append(process)
    return found


def _wait_gone(processes: list[psutil.Process], timeout: float = 5.0) -> None:
    """Poll (the processes are not our children, so there is nothing to ``wait`` on)."""
    deadline = time.monotonic() + timeout
    for process in processes:
        while time.monotonic() < deadline:
            try:
                if process.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.01)


@pytest.fixture
def local_directory(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "pilot"
    yield directory
    started = _registry_processes(directory / "registry.db")
    for process in started:
        process.kill()
    _wait_gone(started)


def test_ensure_local_registry_starts_exactly_one(local_directory: Path) -> None:
    results: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            results.append(ensure_local_registry(local_directory, timeout=10))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert not errors and len(results) == 2 and results[0] == results[1]
    assert len(_registry_processes(local_directory / "registry.db")) == 1
    assert (local_directory.stat().st_mode & 0o777) == 0o700

    registry, beacon = results[0]
    host, port = split_host_port(registry)  # type: ignore[misc]
    listing = request_sync(host, port, {"type": "beacon_list"})
    assert listing["beacons"] == [{"id": 1, "addr": beacon}]
    assert ensure_local_registry(local_directory) == results[0]  # reused, not restarted

    # A dead registry is replaced; the database (and so node IDs) carries over.
    key = Identity.generate().public_key_b64
    first = request_sync(host, port, {"type": "register", "public_key": key})["node_id"]
    state = json.loads((local_directory / "registry.json").read_text())
    victim = psutil.Process(state["pid"])
    victim.kill()
    _wait_gone([victim])
    registry2, _ = ensure_local_registry(local_directory, timeout=10)
    host2, port2 = split_host_port(registry2)  # type: ignore[misc]
    again = request_sync(host2, port2, {"type": "register", "public_key": key})
    assert again["node_id"] == first
    assert len(_registry_processes(local_directory / "registry.db")) == 1


def test_ensure_local_registry_ignores_a_recycled_pid(local_directory: Path) -> None:
    local_directory.mkdir(mode=0o700)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))  # bound, never listening
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
        (local_directory / "registry.json").write_text(
            json.dumps({"registry": dead, "beacon": dead, "pid": os.getpid()})
        )
        registry, _ = ensure_local_registry(local_directory, timeout=10)
    assert registry != dead  # a new registry; this (unrelated) process was not signalled
    assert len(_registry_processes(local_directory / "registry.db")) == 1


def test_ensure_local_registry_timeout_is_a_clear_error(local_directory: Path) -> None:
    with pytest.raises(LocalRegistryError) as caught:
        ensure_local_registry(local_directory, timeout=0.0)
    assert caught.value.errno == errno.ETIMEDOUT
    assert "registry" in str(caught.value)
