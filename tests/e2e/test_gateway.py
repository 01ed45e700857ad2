"""Tools that cannot load pilotsock: ``python -m pilotsock gateway`` (curl -> Pilot),
``python -m pilotsock expose`` (Pilot -> a local TCP service) and ``python -m pilotsock.http get``."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import pilotsock.socket as psocket
from pilotsock.testing.processes import DaemonProcess

from .conftest import DaemonFactory, use_daemon

pytestmark = pytest.mark.timeout(120)


def _start(node: DaemonProcess, *argv: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``python -m ARGV`` as a client of ``node``; returns it and its first output line."""
    process = subprocess.Popen([sys.executable, "-m", *argv], env=node.env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    return process, process.stdout.readline()


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=10)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[0]


@pytest.fixture
def file_server(daemons: DaemonFactory, tmp_path: Path) -> Iterator[tuple[DaemonProcess, DaemonProcess, Path]]:
    client, server_node = daemons("client"), daemons("server", "--hostname", "files")
    root = tmp_path / "www"
    root.mkdir()
    (root / "hello.txt").write_text("hello through the gateway\n")
    (root / "blob.bin").write_bytes(os.urandom(8 * 1024 * 1024))
    deadline = time.monotonic() + 20  # the hostname is known once the registry has answered
    while '"hostname": "files"' not in subprocess.run([sys.executable, "-m", "pilotsock", "info", "--json"],
                                                      env=server_node.env, capture_output=True, text=True, check=False).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    server, banner = _start(server_node, "pilotsock.http", "--port", "8000", "--directory", str(root))
    assert server.stdout is not None
    assert server.stdout.readline() == "Also reachable as http://files.pilot:8000/\n"
    assert banner.startswith("Serving HTTP on"), banner
    yield client, server_node, root
    output = _stop(server)
    assert server.returncode == 0 and "Keyboard interrupt received, exiting." in output  # a clean Ctrl-C


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl (Debian package) is not installed")
def test_curl_through_the_gateway(file_server: tuple[DaemonProcess, DaemonProcess, Path]) -> None:
    client, _, root = file_server
    gateway, banner = _start(client, "pilotsock", "gateway", "--listen", "127.0.0.1:0", "--to", "files.pilot:8000")
    try:
        assert banner.startswith("gateway: tcp 127.0.0.1:"), banner
        port = int(banner.split()[2].rsplit(":", 1)[1])
        base = f"http://127.0.0.1:{port}"
        text = subprocess.run(["curl", "-sSf", "--max-time", "20", f"{base}/hello.txt"], capture_output=True,
                              check=True).stdout
        assert text == b"hello through the gateway\n"
        blob = subprocess.run(["curl", "-sSf", "--max-time", "60", f"{base}/blob.bin"], capture_output=True,
                              check=True).stdout
        assert hashlib.sha256(blob).digest() == hashlib.sha256((root / "blob.bin").read_bytes()).digest()
    finally:
        summary = _stop(gateway)
    assert "closed: 2 connections (0 failed)" in summary, summary


def test_gateway_to_a_closed_port_drops_the_tcp_connection(daemons: DaemonFactory) -> None:
    client, server_node = daemons("client"), daemons("server")
    gateway, banner = _start(client, "pilotsock", "gateway", "--listen", "127.0.0.1:0", "--to",
                             f"{server_node.alias}:4321")
    try:
        port = int(banner.split()[2].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.settimeout(10)
            try:
                data = sock.recv(10)
            except ConnectionResetError:
                data = b""
            assert data == b""  # refused on the Pilot side: the TCP side ends, nothing hangs
    finally:
        summary = _stop(gateway)
    assert "(1 failed)" in summary, summary


def test_expose_publishes_a_local_tcp_echo_server(daemons: DaemonFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    client, server_node = daemons("client"), daemons("server")
    echo = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = echo.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    exposer, banner = _start(server_node, "pilotsock", "expose", "--port", "7000", "--to",
                             f"127.0.0.1:{echo.getsockname()[1]}")
    try:
        assert banner.startswith("expose: pilot"), banner
        use_daemon(monkeypatch, client)
        payload = os.urandom(2 * 1024 * 1024)
        with psocket.create_connection((server_node.alias, 7000), timeout=10) as sock:
            received = bytearray()

            def read_all() -> None:
                while chunk := sock.recv(65536):
                    received.extend(chunk)

            reader = threading.Thread(target=read_all)
            reader.start()
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)  # the half-close travels through: the echo ends too
            reader.join(60)
        assert bytes(received) == payload
    finally:
        summary = _stop(exposer)
        echo.close()
    assert "closed: 1 connections (0 failed)" in summary, summary


def test_http_get_from_the_shell(file_server: tuple[DaemonProcess, DaemonProcess, Path], tmp_path: Path) -> None:
    client, server_node, root = file_server
    target = tmp_path / "download.bin"
    result = subprocess.run([sys.executable, "-m", "pilotsock.http", "get", f"http://{server_node.alias}:8000/blob.bin",
                             "-o", str(target), "--progress"], env=client.env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == (root / "blob.bin").read_bytes()
    assert "100.0%" in result.stderr and "MB/s" in result.stderr
    text = subprocess.run([sys.executable, "-m", "pilotsock.http", "get", "http://files.pilot:8000/hello.txt"],
                          env=client.env, capture_output=True, timeout=60, check=False)
    assert text.returncode == 0 and text.stdout == b"hello through the gateway\n"
    missing = subprocess.run([sys.executable, "-m", "pilotsock.http", "get", "http://files.pilot:8000/nope"],
                             env=client.env, capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 22 and "HTTP 404" in missing.stderr
    unknown = subprocess.run([sys.executable, "-m", "pilotsock.http", "get", "http://nobody.pilot/"],
                             env=client.env, capture_output=True, text=True, timeout=60, check=False)
    assert unknown.returncode == 1 and "nobody.pilot" in unknown.stderr
