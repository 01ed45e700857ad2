"""After 300 closed connections the two daemons fall quiet: no packets and ~0 CPU within
TIME_WAIT + 1 s (the Go snapshot's FIN storm kept one core busy forever per closed connection)."""

from __future__ import annotations

import time

import psutil
import pytest

import pilotsock.socket as psocket
from pilotsock.client.locator import request

from .conftest import DaemonFactory, use_daemon

pytestmark = pytest.mark.timeout(120)
TIME_WAIT_SECONDS = 10.0  # transport.md §14


def _udp_packets(home: object, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("PILOTSOCK_HOME", str(home))
    counters = request({"op": "stats"})["counters"]
    return int(counters["udp.sent"]) + int(counters["udp.received"])


def test_daemons_are_quiet_after_300_closed_connections(daemons: DaemonFactory,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    node_a, node_b = daemons("a"), daemons("b")
    use_daemon(monkeypatch, node_a)
    started = time.monotonic()
    for index in range(300):
        with psocket.create_connection((node_b.address, 7), timeout=10) as sock:
            message = b"connection %d" % index
            sock.sendall(message)
            assert sock.recv(100) == message
    churn_seconds = time.monotonic() - started
    assert churn_seconds < 60, churn_seconds  # never throttled to 10 connections/s
    time.sleep(TIME_WAIT_SECONDS + 1.0)
    processes = [psutil.Process(node.process.pid) for node in (node_a, node_b)]
    cpu_before = [sum(p.cpu_times()[:2]) for p in processes]
    packets_before = [_udp_packets(node.home, monkeypatch) for node in (node_a, node_b)]
    time.sleep(3.0)
    packets_after = [_udp_packets(node.home, monkeypatch) for node in (node_a, node_b)]
    cpu_after = [sum(p.cpu_times()[:2]) for p in processes]
    # At most a beacon keepalive may fall into the window (one every 30 s per daemon).
    assert all(after - before <= 2 for before, after in zip(packets_before, packets_after)), (
        packets_before, packets_after)
    assert all(after - before < 0.1 for before, after in zip(cpu_before, cpu_after)), (cpu_before, cpu_after)
    for node in (node_a, node_b):
        monkeypatch.setenv("PILOTSOCK_HOME", str(node.home))
        stats = request({"op": "stats"})
        assert stats["streams"] == 0 and stats["timers"] == 0, stats
