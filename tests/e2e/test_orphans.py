"""A full close by the application makes the daemon's connection an orphan (bounded FIN_WAIT_2);
``shutdown(SHUT_WR)`` does not, because the application still reads."""

from __future__ import annotations

import socket

import pytest

import pilotsock.socket as psocket
from pilotsock.client.locator import request
from pilotsock.testing.processes import wait_for

from .conftest import DaemonFactory, use_daemon

pytestmark = pytest.mark.timeout(60)


def _stats(home: object, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("PILOTSOCK_HOME", str(home))
    return dict(request({"op": "stats"}))


@pytest.mark.parametrize("full_close", [True, False])
def test_full_close_orphans_and_half_close_does_not(daemons: DaemonFactory, monkeypatch: pytest.MonkeyPatch,
                                                     full_close: bool) -> None:
    node_a, node_b = daemons("a"), daemons("b")
    use_daemon(monkeypatch, node_b)
    server = psocket.socket(psocket.AF_PILOT, psocket.SOCK_STREAM)
    server.bind(("", 5000))
    server.listen()
    use_daemon(monkeypatch, node_a)
    client = psocket.create_connection((node_b.address, 5000), timeout=10)
    held, _ = server.accept()  # the server holds the connection and never closes it
    try:
        if full_close:
            client.close()
        else:
            client.shutdown(socket.SHUT_WR)
        assert held.recv(10) == b""  # our FIN arrived
        stats = wait_for(lambda: (s := _stats(node_a.home, monkeypatch))["stream_states"].get("FIN_WAIT_2") and s,
                         10, "FIN_WAIT_2")
        assert stats["streams_orphaned"] == (1 if full_close else 0)
        if not full_close:
            held.sendall(b"still read")  # a half-closed client still reads
            assert client.recv(100) == b"still read"
    finally:
        held.close()
        server.close()
        client.close()
