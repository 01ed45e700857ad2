# SPDX-License-Identifier: Apache-2.0
"""One-way throughput through the user-space link emulator (``python -m pilotsock bench --via-emulator``).

``--via-emulator``: one-way stream throughput between two daemons whose tunnel crosses the
user-space link emulator (``pilotsock.testing.emulator``) with a given RTT and loss, since the
kernel's netem is not available here. Everything runs on loopback in a temporary directory and
stops by itself (bounded by ``--seconds`` plus start-up).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pilotsock.client.locator import request
from pilotsock.daemon.home import read_state
from pilotsock.testing.processes import DaemonProcess, start_daemon, start_registry, wait_for

_SINK = """
import json, sys, time
import pilotsock.socket as socket
server = socket.socket(socket.AF_PILOT, socket.SOCK_STREAM)
server.bind(("", int(sys.argv[1]))); server.listen(); print("ready", flush=True)
conn, _ = server.accept()
total, first = 0, None
while True:
    data = conn.recv(1 << 20)
    if not data:
        break
    if first is None:
        first = time.monotonic()
    total += len(data)
end = time.monotonic()
print(json.dumps({"bytes": total, "seconds": end - (first or end)}), flush=True)
"""

_SOURCE = """
import sys, time
import pilotsock.socket as socket
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
chunk = b"\\x5a" * (256 * 1024)
deadline = time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    sock.sendall(chunk)
sock.close()
"""


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stream_counters(daemon: DaemonProcess) -> dict[str, int]:
    os.environ["PILOTSOCK_HOME"] = str(daemon.home)
    counters = request({"op": "stats"}, autostart=False)["counters"]
    return {k: v for k, v in counters.items() if k.startswith("stream.")}


def run_via_emulator(*, rtt_ms: float = 100.0, loss: float = 0.005, seconds: float = 10.0,
                     rate_mbps: float = 0.0, congestion_control: str | None = None,
                     receive_buffer_bytes: int | None = None,
                     send_buffer_bytes: int | None = None) -> dict[str, Any]:
    """One-way throughput A -> B through the emulated path; returns a report dict."""
    extra: list[str] = ["--public"]
    if congestion_control:
        extra += ["--congestion-control", congestion_control]
    if receive_buffer_bytes:
        extra += ["--receive-buffer-bytes", str(receive_buffer_bytes)]
    if send_buffer_bytes:
        extra += ["--send-buffer-bytes", str(send_buffer_bytes)]
    with tempfile.TemporaryDirectory(prefix="pilotsock-bench-") as directory:
        root = Path(directory)
        registry = start_registry(root / "registry")
        processes: list[Any] = []
        daemons: list[DaemonProcess] = []
        try:
            node_a = start_daemon(root / "a", registry.address, extra_args=extra)
            daemons.append(node_a)
            b_port = _free_udp_port()
            emulator = subprocess.Popen(
                [sys.executable, "-m", "pilotsock.testing.emulator", "--target", f"127.0.0.1:{b_port}",
                 "--delay-ms", str(rtt_ms / 2), "--loss", str(loss), "--rate-mbps", str(rate_mbps),
                 "--state-file", str(root / "emulator.json"), "--max-seconds", str(seconds + 120)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            processes.append(emulator)
            front = wait_for(lambda: read_state(root / "emulator.json"), 10, "link emulator", emulator)["front"]
            node_b = start_daemon(root / "b", registry.address,
                                  extra_args=[*extra, "--listen", f"127.0.0.1:{b_port}", "--endpoint", front])
            daemons.append(node_b)
            sink = subprocess.Popen([sys.executable, "-c", _SINK, "9000"], env=node_b.env, stdout=subprocess.PIPE,
                                    text=True)
            processes.append(sink)
            assert sink.stdout is not None
            sink.stdout.readline()
            source = subprocess.run([sys.executable, "-c", _SOURCE, node_b.address, "9000", str(seconds)],
                                    env=node_a.env, capture_output=True, text=True, timeout=seconds + 120,
                                    check=False)
            if source.returncode != 0:
                raise RuntimeError(f"source failed: {source.stderr[-2000:]}")
            result = json.loads(sink.stdout.readline())
            time.sleep(0.5)
            sender, receiver = _stream_counters(node_a), _stream_counters(node_b)
            emulator.terminate()
            link_stats, _ = emulator.communicate(timeout=10)
            return {
                "rtt_ms": rtt_ms, "loss": loss, "rate_mbps": rate_mbps,
                "congestion_control": congestion_control or "default",
                "bytes": result["bytes"], "seconds": round(result["seconds"], 3),
                "mb_per_s": round(result["bytes"] / max(result["seconds"], 1e-9) / 1e6, 2),
                "sender": sender, "receiver": receiver,
                "link": json.loads(link_stats.strip().splitlines()[-1]) if link_stats.strip() else {},
            }
        finally:
            for process in processes:
                if process.poll() is None:
                    process.terminate()
                    try:
                        process.wait(5)
                    except subprocess.TimeoutExpired:
                        process.kill()
            for daemon in daemons:
                daemon.stop()
            registry.stop()
