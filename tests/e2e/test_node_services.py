"""Node-level services end to end: info CLI, datagrams, local registry sharing, heartbeat, and
that non-Pilot sockets from pilotsock.socket are untouched stdlib sockets."""

from __future__ import annotations

import json
import os
import socket as stdlib_socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import pilotsock.socket as psocket
from pilotsock.client.locator import request
from pilotsock.testing.processes import start_daemon, start_registry

from .conftest import DaemonFactory, use_daemon

pytestmark = pytest.mark.timeout(90)


def test_info_cli_reports_identity(daemons: DaemonFactory) -> None:
    node = daemons("a", "--hostname", "alpha")
    result = subprocess.run([sys.executable, "-m", "pilotsock", "info", "--json"], env=node.env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["address"] == node.address and info["address"].startswith("0:0000.")
    assert info["node_id"] == node.info["node_id"]
    assert info["hostname"] == "alpha"
    assert info["registry"] == daemons.registry.address
    assert Path(info["home"]) == node.home.resolve()
    text = subprocess.run([sys.executable, "-m", "pilotsock", "info"], env=node.env, capture_output=True,
                          text=True, timeout=30)
    assert node.address in text.stdout


def test_datagrams_between_nodes(daemons: DaemonFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    node_a, node_b = daemons("a"), daemons("b")
    receiver = subprocess.Popen([sys.executable, "-c", (
        "import pilotsock.socket as socket\n"
        "s = socket.socket(socket.AF_PILOT, socket.SOCK_DGRAM)\n"
        "s.bind(('', 5353)); print('ready', flush=True)\n"
        "for _ in range(3):\n"
        "    data, peer = s.recvfrom(70000)\n"
        "    s.sendto(data[::-1], peer)\n")], env=node_b.env, stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().startswith("ready")
        use_daemon(monkeypatch, node_a)
        sock = psocket.socket(psocket.AF_PILOT, psocket.SOCK_DGRAM)
        sock.settimeout(10)
        assert sock.type == psocket.SOCK_DGRAM and sock.family == psocket.AF_PILOT
        big = os.urandom(60000)
        for payload in (b"ping", b"x" * 1400, big):
            assert sock.sendto(payload, (node_b.address, 5353)) == len(payload)
            data, peer = sock.recvfrom(70000)
            assert data == payload[::-1]
            assert peer == (node_b.address, 5353)
        with pytest.raises(OSError) as too_big:
            sock.sendto(b"x" * 70000, (node_b.address, 5353))
        assert too_big.value.errno == 90  # EMSGSIZE
        sock.close()
        receiver.wait(10)
    finally:
        receiver.kill()


def test_daemons_without_registry_share_the_local_registry(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PILOTSOCK_LOCAL_REGISTRY_DIR"] = str(tmp_path / "local-registry")
    first = start_daemon(tmp_path / "one", None, env=env)
    second = start_daemon(tmp_path / "two", None, env=env)
    try:
        assert first.info["registry"] == second.info["registry"]
        assert first.info["node_id"] != second.info["node_id"]
        client_env = dict(first.env)
        client_env["PILOTSOCK_LOCAL_REGISTRY_DIR"] = env["PILOTSOCK_LOCAL_REGISTRY_DIR"]
        result = subprocess.run([sys.executable, "-c", (
            "import pilotsock.socket as socket, sys\n"
            "s = socket.create_connection((sys.argv[1], 7), timeout=10)\n"
            "s.sendall(b'local'); print(s.recv(10).decode())\n"), second.address],
            env=client_env, capture_output=True, text=True, timeout=30)
        assert result.stdout.strip() == "local", result.stderr
    finally:
        first.stop()
        second.stop()
        state = json.loads((tmp_path / "local-registry" / "registry.json").read_text())
        os.kill(int(state["pid"]), 15)


def test_client_starts_a_daemon_when_none_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = start_registry(tmp_path / "registry")
    home = tmp_path / "auto-home"
    monkeypatch.setenv("PILOTSOCK_HOME", str(home))
    monkeypatch.setenv("PILOTSOCK_REGISTRY", registry.address)
    monkeypatch.setenv("PILOTSOCK_AUTOSTART", "1")
    try:
        info = request({"op": "info"}, timeout=20)
        assert info["ok"] and info["registry"] == registry.address
        assert (home / "daemon.sock").exists()
        assert oct((home / "daemon.sock").stat().st_mode & 0o777) == "0o600"
    finally:
        state = json.loads((home / "daemon.json").read_text())
        os.kill(int(state["pid"]), 15)
        deadline = time.monotonic() + 10
        while (home / "daemon.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        registry.stop()


def test_heartbeat_survives_a_registry_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = start_registry(tmp_path / "registry")
    node = start_daemon(tmp_path / "node", registry.address, extra_args=["--heartbeat-interval", "0.2"])
    monkeypatch.setenv("PILOTSOCK_HOME", str(node.home))

    def counters() -> dict[str, int]:
        return request({"op": "stats"})["counters"]  # type: ignore[no-any-return]

    try:
        registry.stop()
        deadline = time.monotonic() + 10
        while counters()["registry.heartbeat_failed"] < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert counters()["registry.heartbeat_failed"] >= 2
        restarted = start_registry(registry.directory, listen=registry.address, db=registry.db)
        try:
            ok_before = counters()["registry.heartbeat_ok"]
            deadline = time.monotonic() + 20
            while counters()["registry.heartbeat_ok"] < ok_before + 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert counters()["registry.heartbeat_ok"] >= ok_before + 2
            assert node.process.poll() is None
            info = request({"op": "info"})
            assert info["node_id"] == node.info["node_id"]
        finally:
            restarted.stop()
    finally:
        node.stop()


def test_non_pilot_sockets_are_plain_stdlib_sockets() -> None:
    for name in getattr(stdlib_socket, "__all__", []):
        assert hasattr(psocket, name), name
        if name not in psocket.__implements__:
            assert getattr(psocket, name) is getattr(stdlib_socket, name), name
    server = psocket.socket()
    assert server.family == stdlib_socket.AF_INET and server.type == stdlib_socket.SOCK_STREAM
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(conn.recv(100).upper())

    thread = threading.Thread(target=serve)
    thread.start()
    client = psocket.create_connection(server.getsockname(), timeout=5)
    client.sendall(b"kernel tcp")
    assert client.recv(100) == b"KERNEL TCP"
    assert isinstance(client, stdlib_socket.socket)
    thread.join(5)
    client.close()
    server.close()
    with pytest.raises(OSError) as closed:
        client.getpeername()
    assert closed.value.errno == 9
    unix_a, unix_b = psocket.socketpair()
    unix_a.sendall(b"x")
    assert unix_b.recv(1) == b"x" and unix_a.family == stdlib_socket.AF_UNIX
    unix_a.close()
    unix_b.close()


def test_killed_daemon_never_hangs_a_caller(daemons: DaemonFactory) -> None:
    node = daemons("a")
    program = (
        "import pilotsock.socket as socket, sys, json\n"
        "server = socket.socket(socket.AF_PILOT); server.bind(('', 8000)); server.listen()\n"
        "client = socket.create_connection(server.getsockname(), timeout=10)\n"
        "conn, _ = server.accept()\n"
        "print('ready', flush=True)\n"
        "results = {}\n"
        "try:\n"
        "    results['recv'] = repr(conn.recv(10))\n"
        "except OSError as exc:\n"
        "    results['recv'] = type(exc).__name__\n"
        "try:\n"
        "    server.accept(); results['accept'] = 'returned'\n"
        "except OSError as exc:\n"
        "    results['accept'] = [type(exc).__name__, exc.errno]\n"
        "print(json.dumps(results), flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", program], env=node.env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().startswith("ready")
        time.sleep(0.2)  # the child is now blocked in recv()
        node.kill()
        line = child.stdout.readline()
        child.wait(10)
    finally:
        child.kill()
    results = json.loads(line)
    # The daemon is gone: the connection was never closed cleanly, so a reset, not a hang.
    assert results["recv"] == "ConnectionResetError"
    assert results["accept"] == ["ConnectionAbortedError", 103]


def test_a_listener_whose_daemon_died_stops_polling_readable(daemons: DaemonFactory) -> None:
    """The dead control connection would poll readable for ever: a selector, socketserver or
    asyncio accept loop would spin at 100% CPU. After the first accept() reports the loss, the
    socket stays quiet, and every accept() raises at once (blocking or not)."""
    node = daemons("a")
    program = (
        "import pilotsock.socket as socket, selectors, json, time\n"
        "server = socket.socket(socket.AF_PILOT); server.bind(('', 8000)); server.listen()\n"
        "selector = selectors.DefaultSelector(); selector.register(server, selectors.EVENT_READ)\n"
        "print('ready', flush=True); input()\n"
        "results = {'first_poll': len(selector.select(5))}\n"
        "try:\n"
        "    server.accept()\n"
        "except OSError as exc:\n"
        "    results['accept'] = [type(exc).__name__, exc.errno]\n"
        "results['polls_after'] = sum(len(selector.select(0.1)) for _ in range(3))\n"
        "for mode in (None, 0.0):\n"
        "    server.settimeout(mode); started = time.monotonic()\n"
        "    try:\n"
        "        server.accept()\n"
        "    except OSError as exc:\n"
        "        results[f'again_{mode}'] = [exc.errno, time.monotonic() - started < 1]\n"
        "results['name'] = list(server.getsockname())\n"
        "server.close()\n"
        "print(json.dumps(results), flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", program], env=node.env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdin is not None and child.stdout is not None
        assert child.stdout.readline().startswith("ready")
        node.kill()
        child.stdin.write("go\n")
        child.stdin.flush()
        results = json.loads(child.stdout.readline())
        child.wait(10)
    finally:
        child.kill()
    assert results["first_poll"] == 1 and results["accept"] == ["ConnectionAbortedError", 103]
    assert results["polls_after"] == 0
    assert results["again_None"] == [103, True] and results["again_0.0"] == [103, True]
    assert results["name"] == [node.address, 8000]


def test_closing_a_listener_frees_its_port(daemons: DaemonFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    node = daemons("a")
    use_daemon(monkeypatch, node)
    first = psocket.socket(psocket.AF_PILOT, psocket.SOCK_STREAM)
    first.bind(("", 6000))
    first.listen()
    second = psocket.socket(psocket.AF_PILOT, psocket.SOCK_STREAM)
    with pytest.raises(OSError) as in_use:
        second.bind(("", 6000))
    assert in_use.value.errno == 98
    first.close()
    deadline = time.monotonic() + 5
    while True:
        try:
            second.bind(("", 6000))
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    second.listen()
    client = psocket.socket(psocket.AF_PILOT, psocket.SOCK_STREAM)
    client.settimeout(5)
    client.connect((node.address, 6000))
    conn, _ = second.accept()
    assert conn.getsockname() == (node.address, 6000)
    for sock in (conn, client, second):
        sock.close()
    ephemeral = psocket.socket(psocket.AF_PILOT, psocket.SOCK_STREAM)
    ephemeral.bind(("", 0))
    assert 49152 <= ephemeral.getsockname()[1] <= 65535
    ephemeral.close()
