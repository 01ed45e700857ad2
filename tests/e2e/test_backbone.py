"""The backbone, end to end: real registry, real daemons, real UDP, real encryption."""

from __future__ import annotations

import hashlib
import json
import os
import socket as kernel_socket
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pilotsock.client.locator import request
from pilotsock.config import TransportConfig
from pilotsock.daemon.udp_endpoint import parse_host_port
from pilotsock.http import PilotHTTPConnection
from pilotsock.registry.client import request_sync
from pilotsock.testing.forwarder import UdpForwarder
from pilotsock.testing.processes import restart_daemon, start_registry
from pilotsock.wire.tunnel_frames import MAGIC_PILA, MAGIC_PILS

from .conftest import PROGRAMS, DaemonFactory, use_daemon

pytestmark = pytest.mark.timeout(120)


def _run_program(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _start_echo_server(env: dict[str, str], port: int, count: int = 1) -> subprocess.Popen[str]:
    server = subprocess.Popen([sys.executable, str(PROGRAMS / "echo_server.py"), str(port), str(count)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert server.stdout is not None
    line = server.stdout.readline()
    assert line.startswith("ready"), server.stderr.read() if server.stderr else line
    return server


def test_ten_megabytes_echo_through_two_encrypted_daemons(daemons: DaemonFactory) -> None:
    node_a = daemons("a")
    forwarder = UdpForwarder().start()
    try:
        front = "%s:%d" % forwarder.front_address
        node_b = daemons("b", "--endpoint", front)
        forwarder.target = parse_host_port(node_b.info["listen"])
        marker = "PLAINTEXT-MARKER-5f1c2a"
        forwarder.contains.append(marker.encode())
        server = _start_echo_server(node_b.env, 9100)
        try:
            result = _run_program(node_a.env, str(PROGRAMS / "echo_client.py"), node_b.address, "9100",
                                  str(10 * 1024 * 1024), marker)
            assert result.returncode == 0, result.stderr
            report = json.loads(result.stdout)
            server.wait(10)
        finally:
            server.kill()
    finally:
        forwarder.close()
    assert report["bytes"] == 10 * 1024 * 1024
    assert report["sent"] == report["received"]
    # What crossed the wire between the daemons: key exchange and sealed frames only.
    heads = {record.head[:4] for record in forwarder.records}
    assert heads <= {MAGIC_PILA, MAGIC_PILS}, heads
    sealed = [r for r in forwarder.records if r.head[:4] == MAGIC_PILS]
    # Data both ways, plus ACKs, in loopback-sized segments (the forwarder is on 127.0.0.1).
    assert len(sealed) > 2 * 10 * 1024 * 1024 // TransportConfig().loopback_mss
    assert forwarder.matches == 0  # the plaintext marker never appeared on the wire
    assert any(r.head[:4] == MAGIC_PILA for r in forwarder.records)


def test_http_server_serves_files_with_keep_alive(daemons: DaemonFactory, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    node_a, node_b = daemons("a"), daemons("b")
    site = tmp_path / "site"
    site.mkdir()
    big = os.urandom(5 * 1024 * 1024)
    (site / "big.bin").write_bytes(big)
    (site / "hello.txt").write_text("hello over pilot\n")
    server = subprocess.Popen([sys.executable, "-m", "pilotsock.http", "--port", "8080", "--directory", str(site)],
                              env=node_b.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        assert f"http://{node_b.alias}:8080/" in banner, banner
        use_daemon(monkeypatch, node_a)
        connection = PilotHTTPConnection(node_b.alias, 8080, timeout=20)
        connection.request("GET", "/big.bin")
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200
        assert hashlib.sha256(body).digest() == hashlib.sha256(big).digest()
        first_socket = connection.sock
        for _ in range(20):
            connection.request("GET", "/hello.txt")
            response = connection.getresponse()
            assert response.status == 200 and response.read() == b"hello over pilot\n"
            assert connection.sock is first_socket  # one connection: keep-alive
        assert connection.sock.getpeername() == (node_b.address, 8080)
        connection.close()
    finally:
        server.terminate()
        server.wait(10)


def test_registry_restart_keeps_node_ids_and_daemon_restart_keeps_address(daemons: DaemonFactory) -> None:
    node_a, node_b = daemons("a"), daemons("b", "--hostname", "bee")
    identity_file = node_a.home / "identity.json"
    assert stat.S_IMODE(identity_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(node_a.home.stat().st_mode) == 0o700
    public_key = json.loads(identity_file.read_text())["public_key"]
    registry = daemons.registry
    host, port = parse_host_port(registry.address)
    registry.stop()
    restarted = start_registry(registry.directory, listen=registry.address, db=registry.db)
    try:
        reply = request_sync(host, port, {"type": "register", "listen_addr": "127.0.0.1:1", "public_key": public_key})
        assert reply["node_id"] == node_a.info["node_id"]
        reply = request_sync(host, port, {"type": "resolve_hostname", "hostname": "bee"})
        assert reply["node_id"] == node_b.info["node_id"]
        again = daemons.track(restart_daemon(node_a))
        assert again.address == node_a.address
        assert again.info["node_id"] == node_a.info["node_id"]
    finally:
        restarted.stop()


def _echo_round_trip(env: dict[str, str], address: str, size: int = 100_000) -> dict[str, object]:
    result = _run_program(env, str(PROGRAMS / "echo_client.py"), address, "7", str(size))
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    assert report["sent"] == report["received"]
    return report


def test_daemon_survives_garbage_and_vanishing_clients(daemons: DaemonFactory,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    node_a, node_b = daemons("a"), daemons("b")
    _echo_round_trip(node_a.env, node_b.address)  # a session exists, so garbage meets real state
    udp_target = parse_host_port(node_b.info["listen"])
    garbage = [b"", b"\x00", b"\x07" * 3, b"PILS", b"PILS" + b"\x00" * 40, b"PILS" + os.urandom(200),
               b"PILA" + os.urandom(10), b"PILA" + os.urandom(136), b"PILK" + os.urandom(40), b"PILT" + os.urandom(60),
               b"PILP", b"XXXX" + os.urandom(30), b"\x06" + os.urandom(50), b"\x02\x04\x7f\x00"]
    garbage += [os.urandom(n) for n in (1, 17, 70, 1400, 65000)]
    with kernel_socket.socket(kernel_socket.AF_INET, kernel_socket.SOCK_DGRAM) as udp:
        for datagram in garbage * 20:
            udp.sendto(datagram, udp_target)
    control_path = str(node_b.home / "daemon.sock")
    for junk in (os.urandom(3000), struct.pack(">I", 0xFFFFFFF0) + b"x", struct.pack(">I", 5) + b"\xc1\xc1\xc1\xc1\xc1",
                 struct.pack(">I", 1) + b"\x01", struct.pack(">I", 3) + b"\x81\xa2op"):
        with kernel_socket.socket(kernel_socket.AF_UNIX, kernel_socket.SOCK_STREAM) as control:
            control.settimeout(5)
            control.connect(control_path)
            control.sendall(junk)
            control.shutdown(kernel_socket.SHUT_WR)
            try:
                while control.recv(4096):
                    pass
            except OSError:
                pass
    # A client that vanishes in the middle of a transfer (killed, never closes cleanly).
    vanishing = subprocess.Popen([sys.executable, str(PROGRAMS / "echo_client.py"), node_b.address, "7",
                                  str(50 * 1024 * 1024)], env=node_a.env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    vanishing.kill()
    vanishing.wait(5)
    assert node_a.process.poll() is None and node_b.process.poll() is None
    _echo_round_trip(node_a.env, node_b.address, 1_000_000)
    use_daemon(monkeypatch, node_b)
    counters = request({"op": "stats"})["counters"]
    assert counters["local_api.malformed"] >= 2
    assert counters.get("tunnel.decrypt", 0) + counters.get("tunnel.no_session", 0) + counters.get(
        "tunnel.pils_short", 0) > 0
    assert counters.get("tunnel.plaintext_rejected", 0) >= 20


def test_connect_errors_match_the_stdlib(daemons: DaemonFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    import pilotsock.socket as psocket

    node_a, node_b = daemons("a"), daemons("b")
    use_daemon(monkeypatch, node_a)
    sock = psocket.socket(psocket.AF_PILOT, psocket.SOCK_STREAM)
    sock.settimeout(10)
    with pytest.raises(ConnectionRefusedError) as refused:
        sock.connect((node_b.address, 4242))
    assert refused.value.errno == 111 and refused.value.strerror == "Connection refused"
    sock.close()
    with pytest.raises(OSError) as closed:
        sock.getsockname()
    assert closed.value.errno == 9
    with pytest.raises(OSError) as closed_recv:
        sock.recv(1)
    assert closed_recv.value.errno == 9
    # Same scenario on kernel TCP: identical class and errno.
    with kernel_socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    kernel = kernel_socket.socket()
    with pytest.raises(ConnectionRefusedError) as kernel_refused:
        kernel.connect(("127.0.0.1", free_port))
    kernel.close()
    assert type(kernel_refused.value) is type(refused.value)
    assert kernel_refused.value.errno == refused.value.errno
    # A listener with nobody accepting: a client timeout is TimeoutError('timed out').
    server = psocket.socket(psocket.AF_PILOT, psocket.SOCK_STREAM)
    server.bind(("", 4243))
    server.listen()
    client = psocket.create_connection((node_a.address, 4243), timeout=5)
    client.settimeout(0.2)
    with pytest.raises(TimeoutError) as timed_out:
        client.recv(10)
    assert str(timed_out.value) == "timed out"
    client.close()
    server.close()
