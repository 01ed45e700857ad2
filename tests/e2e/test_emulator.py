"""The user-space link emulator (netem is unavailable here) and the benchmark built on it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pilotsock.benchmarks.emulated_path import run_via_emulator

pytestmark = pytest.mark.timeout(120)


def _start(tmp_path: Path, target: tuple[str, int], *args: str) -> tuple[subprocess.Popen[str], tuple[str, int]]:
    state = tmp_path / "emulator.json"
    process = subprocess.Popen([sys.executable, "-m", "pilotsock.testing.emulator", "--target", "%s:%d" % target,
                                "--state-file", str(state), "--max-seconds", "60", *args],
                               stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while not state.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    host, _, port = json.loads(state.read_text())["front"].rpartition(":")
    return process, (host, int(port))


def test_emulator_delays_both_ways_and_drops(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as echo, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        echo.bind(("127.0.0.1", 0))
        process, front = _start(tmp_path, echo.getsockname(), "--delay-ms", "40")
        try:
            client.settimeout(5)
            echo.settimeout(5)
            started = time.monotonic()
            client.sendto(b"ping", front)
            data, via = echo.recvfrom(100)
            echo.sendto(data.upper(), via)
            reply, _ = client.recvfrom(100)
            rtt = time.monotonic() - started
            assert reply == b"PING"
            assert 0.08 <= rtt < 1.0, rtt
        finally:
            process.terminate()
            process.wait(5)
        lossy = tmp_path / "lossy"
        lossy.mkdir()
        process, front = _start(lossy, echo.getsockname(), "--loss", "1.0")
        try:
            for _ in range(20):
                client.sendto(b"gone", front)
            echo.settimeout(0.5)
            with pytest.raises(TimeoutError):
                echo.recvfrom(100)
        finally:
            process.terminate()
            process.wait(5)


def test_bench_via_emulator_runs() -> None:
    report = run_via_emulator(rtt_ms=20, loss=0.01, seconds=2, congestion_control="bbr")
    assert report["bytes"] > 1_000_000 and report["mb_per_s"] > 0
    assert report["sender"]["stream.bytes_sent"] >= report["bytes"]
