"""Fixtures for end-to-end tests: a real registry and real daemons on loopback, in temp dirs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pilotsock.testing.processes import DaemonProcess, RegistryProcess, start_daemon, start_registry

PROGRAMS = Path(__file__).parent / "programs"


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing a test starts may touch the real user's daemon or local registry."""
    monkeypatch.setenv("PILOTSOCK_HOME", str(tmp_path / "default-home"))
    monkeypatch.setenv("PILOTSOCK_LOCAL_REGISTRY_DIR", str(tmp_path / "local-registry"))
    monkeypatch.setenv("PILOTSOCK_AUTOSTART", "0")
    monkeypatch.delenv("PILOTSOCK_REGISTRY", raising=False)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    process = start_registry(tmp_path / "registry")
    yield process
    process.stop()


class DaemonFactory:
    def __init__(self, root: Path, registry: RegistryProcess) -> None:
        self.root = root
        self.registry = registry
        self.started: list[DaemonProcess] = []

    def __call__(self, name: str, *extra: str) -> DaemonProcess:
        daemon = start_daemon(self.root / name, self.registry.address, extra_args=["--public", *extra])
        self.started.append(daemon)
        return daemon

    def track(self, daemon: DaemonProcess) -> DaemonProcess:
        self.started.append(daemon)
        return daemon

    def close(self) -> None:
        for daemon in self.started:
            daemon.stop()


@pytest.fixture
def daemons(tmp_path: Path, registry: RegistryProcess) -> Iterator[DaemonFactory]:
    factory = DaemonFactory(tmp_path, registry)
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def shared_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """One registry and one public daemon for a whole module of single-node socket tests."""
    root = tmp_path_factory.mktemp("node")
    registry = start_registry(root / "registry")
    daemon = start_daemon(root / "node", registry.address, extra_args=["--public", "--hostname", "solo"])
    yield daemon
    daemon.stop()
    registry.stop()


@pytest.fixture
def node(shared_node: DaemonProcess, monkeypatch: pytest.MonkeyPatch) -> DaemonProcess:
    """This test process as a client of the module's shared daemon."""
    use_daemon(monkeypatch, shared_node)
    return shared_node


def use_daemon(monkeypatch: pytest.MonkeyPatch, daemon: DaemonProcess) -> None:
    """Make this test process a client of ``daemon``."""
    monkeypatch.setenv("PILOTSOCK_HOME", str(daemon.home))
    os.environ["PILOTSOCK_AUTOSTART"] = "0"
