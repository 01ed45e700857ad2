# SPDX-License-Identifier: Apache-2.0
"""``python -m pilotsock bench``: pilotsock beside kernel TCP loopback, in one run.

Starts its own registry and two daemons (A and B, encrypted tunnel between them) in a temporary
directory; every workload (:mod:`pilotsock.benchmarks.workloads`) runs as a Python process at
each end, first over kernel TCP on 127.0.0.1, then from a client of A to a server of B:

(a) one-way bulk, (b) echo bulk, (c) connection setup p50/p99, (d) 8-byte RTT p50/p99 on an open
connection, (e) HTTP keep-alive req/s with 1 and N clients against the same ``http.server``,
(f) new connection per request req/s, (g) daemon CPU seconds per GB (both daemons, one-way bulk)
and peak RSS, (h) idle daemon CPU.

Nothing leaves the machine; every process is bounded in time and stopped at the end.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import psutil

from pilotsock.testing.processes import DaemonProcess, start_daemon, start_registry

WORKLOADS = [sys.executable, "-m", "pilotsock.benchmarks.workloads"]
CLIENT_TIMEOUT_SECONDS = 120.0


@dataclass
class Settings:
    bulk_mb: int = 256
    echo_mb: int = 64
    dials: int = 1000
    pings: int = 5000
    http_clients: int = 8
    http_seconds: float = 3.0
    idle_seconds: float = 3.0
    loopback_mss: int | None = None  # the daemons' --loopback-mss (0: Internet-size segments)
    busy_poll_us: float | None = None  # the daemons' --busy-poll-us


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    pilot: float
    kernel: float | None = None
    higher_is_better: bool = True
    goal: str = ""

    @property
    def ratio(self) -> float | None:
        """pilotsock relative to kernel TCP, > 1 always meaning pilotsock is better."""
        if self.kernel is None or not self.kernel or not self.pilot:
            return None
        return self.pilot / self.kernel if self.higher_is_better else self.kernel / self.pilot


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"figures": [{**asdict(f), "ratio": f.ratio} for f in self.figures], "settings": self.settings,
                "environment": self.environment, "seconds": round(self.seconds, 1)}


class Progress:
    """One line on a terminal (a bar and the current step); plain lines otherwise."""

    def __init__(self, steps: int, stream: TextIO) -> None:
        self.steps, self.done, self.stream = steps, 0, stream
        self.tty = stream.isatty()

    def step(self, what: str) -> None:
        self.done += 1
        if self.tty:
            filled = int(30 * self.done / self.steps)
            self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.steps} {what:<40}")
        else:
            self.stream.write(f"bench: {self.done}/{self.steps} {what}\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\r" + " " * 80 + "\r")
            self.stream.flush()


def _run_client(role: str, family: str, env: dict[str, str], *args: str) -> dict[str, Any]:
    completed = subprocess.run([*WORKLOADS, role, "--family", family, *args], env=env, capture_output=True,
                               text=True, timeout=CLIENT_TIMEOUT_SECONDS, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{role} on {family} failed: {completed.stderr[-2000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


@contextmanager
def _server(role: str, family: str, env: dict[str, str]) -> Iterator[int]:
    process = subprocess.Popen([*WORKLOADS, role, "--family", family], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"{role} server on {family} did not start")
        yield int(json.loads(line)["port"])
    finally:
        process.kill()
        process.wait(10)


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        times = process.cpu_times()
        total += times.user + times.system
    return total


@dataclass
class CpuUse:
    daemons: float = 0.0  # CPU seconds of both daemons
    host_busy: float = 0.0  # percent of all the machine's CPUs busy (every process)


@contextmanager
def _cpu_use(daemons: list[psutil.Process]) -> Iterator[CpuUse]:
    """What a workload cost: the daemons' CPU seconds, and how busy the whole host was (a
    latency that the CPUs' saturation explains reads differently from one spent waiting)."""
    use = CpuUse()
    before = _cpu_seconds(daemons)
    psutil.cpu_percent(None)  # starts the host's interval
    yield use
    use.host_busy = psutil.cpu_percent(None)
    use.daemons = _cpu_seconds(daemons) - before


def _peak_rss_bytes(process: psutil.Process) -> int:
    """VmHWM: the highest resident set size the process reached."""
    try:
        for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(process.memory_info().rss)


class Bench:
    def __init__(self, settings: Settings, client_env: dict[str, str], server_env: dict[str, str],
                 server_host: str, daemons: list[psutil.Process], progress: Progress) -> None:
        self.settings = settings
        self.envs = {"kernel": {k: v for k, v in os.environ.items() if not k.startswith("PILOTSOCK_")},
                     "pilot": client_env}
        self.server_envs = {"kernel": self.envs["kernel"], "pilot": server_env}
        self.hosts = {"kernel": "127.0.0.1", "pilot": server_host}
        self.daemons = daemons
        self.progress = progress
        self.figures: list[Figure] = []

    def _both(self, what: str, measure: Callable[[str], float]) -> tuple[float, float]:
        results = {}
        for family in ("kernel", "pilot"):
            self.progress.step(f"{what} ({family})")
            results[family] = measure(family)
        return results["pilot"], results["kernel"]

    def streams(self) -> None:
        s = self.settings
        cpu_per_gb = 0.0
        with _server("serve", "kernel", self.server_envs["kernel"]) as kernel_port, \
                _server("serve", "pilot", self.server_envs["pilot"]) as pilot_port:
            ports = {"kernel": kernel_port, "pilot": pilot_port}

            def client(role: str, family: str, *args: str) -> dict[str, Any]:
                return _run_client(role, family, self.envs[family], "--host", self.hosts[family],
                                   "--port", str(ports[family]), *args)

            def bulk(family: str) -> float:
                nonlocal cpu_per_gb
                before = _cpu_seconds(self.daemons)
                result = client("one-way", family, "--bytes", str(s.bulk_mb * 1_000_000))
                if family == "pilot":
                    cpu_per_gb = (_cpu_seconds(self.daemons) - before) / (result["bytes"] / 1e9)
                return float(result["bytes"] / result["seconds"] / 1e6)

            pilot, kernel = self._both("one-way bulk", bulk)
            self.figures.append(Figure("one_way", f"(a) one-way bulk {s.bulk_mb} MB", "MB/s", pilot, kernel,
                                       goal=">= 250 MB/s"))

            def echo(family: str) -> float:
                result = client("echo", family, "--bytes", str(s.echo_mb * 1_000_000))
                return float(result["bytes"] / result["seconds"] / 1e6)

            pilot, kernel = self._both("echo bulk", echo)
            self.figures.append(Figure("echo", f"(b) echo bulk {s.echo_mb} MB", "MB/s", pilot, kernel,
                                       goal=">= 120 MB/s"))

            def latencies(role: str, count: int, key: str, label: str, goal: str, per: str) -> None:
                samples: dict[str, list[float]] = {}
                use = CpuUse()

                def measure(family: str) -> float:
                    with _cpu_use(self.daemons) as measured:
                        samples[family] = client(role, family, "--count", str(count))["samples"]
                    if family == "pilot":
                        use.daemons, use.host_busy = measured.daemons, measured.host_busy
                    return 0.0

                self._both(f"{label} x{count}", measure)
                for name, fraction, target in (("p50", 0.5, goal), ("p99", 0.99, "")):
                    self.figures.append(Figure(f"{key}_{name}", f"{label} {name}", "ms",
                                               _percentile(samples["pilot"], fraction) * 1e3,
                                               _percentile(samples["kernel"], fraction) * 1e3,
                                               higher_is_better=False, goal=target))
                self._cpu_figures(key, label, per, use, len(samples["pilot"]))

            latencies("dial", s.dials, "dial", "(c) connection setup", "<= 0.25 ms", "dial")
            latencies("rtt", s.pings, "rtt", "(d) 8-byte RTT", "<= 0.20 ms", "ping")
        self.figures.append(Figure("cpu_per_gb", "(g) daemon CPU per GB (both, one-way)", "CPU s/GB", cpu_per_gb,
                                   higher_is_better=False))

    def _cpu_figures(self, key: str, label: str, per: str, use: CpuUse, count: int) -> None:
        """The daemons' CPU per operation and the host's load, of the pilotsock run just measured."""
        tag = label.split(" ", 1)[0]
        self.figures.append(Figure(f"{key}_daemon_cpu", f"{tag} daemon CPU per {per} (both)", "us",
                                   use.daemons / max(1, count) * 1e6, higher_is_better=False))
        self.figures.append(Figure(f"{key}_host_busy", f"{tag} host CPU busy (all processes)", "%",
                                   use.host_busy, higher_is_better=False))

    def http(self) -> None:
        s = self.settings

        def load(family: str, port: int, clients: int, keep_alive: bool, use: CpuUse | None = None) -> float:
            start_at = time.time() + 1.0  # room for the clients' imports
            processes = [subprocess.Popen(
                [*WORKLOADS, "http-client", "--family", family, "--host", self.hosts[family], "--port", str(port),
                 "--seconds", str(s.http_seconds), "--start-at", str(start_at),
                 *(["--keep-alive"] if keep_alive else [])],
                env=self.envs[family], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(clients)]
            time.sleep(max(0.0, start_at - time.time()))
            with _cpu_use(self.daemons) as measured:  # the clients' run, not their imports
                outputs = [process.communicate(timeout=CLIENT_TIMEOUT_SECONDS) for process in processes]
            if use is not None:
                use.daemons, use.host_busy = measured.daemons, measured.host_busy
            total = 0
            for process, (out, err) in zip(processes, outputs, strict=True):
                if process.returncode != 0:
                    raise RuntimeError(f"http client on {family} failed: {err[-2000:]}")
                total += json.loads(out.strip().splitlines()[-1])["requests"]
            return total / s.http_seconds

        with _server("http-server", "kernel", self.server_envs["kernel"]) as kernel_port, \
                _server("http-server", "pilot", self.server_envs["pilot"]) as pilot_port:
            ports = {"kernel": kernel_port, "pilot": pilot_port}
            for clients in (1, s.http_clients):
                def keep_alive(family: str, count: int = clients) -> float:
                    return load(family, ports[family], count, True)

                pilot, kernel = self._both(f"HTTP keep-alive, {clients} client(s)", keep_alive)
                self.figures.append(Figure(f"http_keepalive_{clients}", f"(e) HTTP keep-alive, {clients} client(s)",
                                           "req/s", pilot, kernel, goal=">= 0.8x kernel"))
            clients = max(1, s.http_clients // 2)
            use = CpuUse()

            def new_connections(family: str) -> float:
                return load(family, ports[family], clients, False, use if family == "pilot" else None)

            pilot, kernel = self._both(f"HTTP new connection, {clients} clients", new_connections)
            self.figures.append(Figure("http_new_connection", f"(f) new connection per request, {clients} clients",
                                       "req/s", pilot, kernel, goal=">= 1000 req/s"))
            self._cpu_figures("http_new_connection", "(f)", "request", use, round(pilot * s.http_seconds))

    def daemon_footprint(self) -> None:
        self.progress.step("idle daemons")
        time.sleep(0.5)  # let the last connections finish closing
        before = _cpu_seconds(self.daemons)
        time.sleep(self.settings.idle_seconds)
        idle = (_cpu_seconds(self.daemons) - before) / self.settings.idle_seconds / len(self.daemons)
        self.figures.append(Figure("peak_rss", "(g) daemon peak RSS (largest)", "MiB",
                                   max(_peak_rss_bytes(d) for d in self.daemons) / 2**20, higher_is_better=False,
                                   goal="<= 40 MiB"))
        self.figures.append(Figure("idle_cpu", "(h) idle daemon CPU (mean)", "% of a core", idle * 100,
                                   higher_is_better=False, goal="~0%"))


def run(settings: Settings, progress_stream: TextIO | None = None) -> Report:
    started = time.monotonic()
    progress = Progress(15, progress_stream or sys.stderr)
    with tempfile.TemporaryDirectory(prefix="pilotsock-bench-") as directory:
        root = Path(directory)
        registry = start_registry(root / "registry")
        daemons: list[DaemonProcess] = []
        try:
            for name in ("a", "b"):
                extra = ["--public"]
                if settings.loopback_mss is not None:
                    extra += ["--loopback-mss", str(settings.loopback_mss)]
                if settings.busy_poll_us is not None:
                    extra += ["--busy-poll-us", str(settings.busy_poll_us)]
                daemons.append(start_daemon(root / name, registry.address, extra_args=extra))
            node_a, node_b = daemons
            bench = Bench(settings, node_a.env, node_b.env, node_b.address,
                          [psutil.Process(d.process.pid) for d in daemons], progress)
            bench.streams()
            bench.http()
            bench.daemon_footprint()
        finally:
            for daemon in daemons:
                daemon.stop()
            registry.stop()
            progress.finish()
    return Report(bench.figures, asdict(settings), {
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "kernel": platform.release()}, time.monotonic() - started)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def format_table(report: Report) -> str:
    rows = [("figure", "unit", "pilotsock", "kernel TCP", "ratio", "goal")]
    for f in report.figures:
        ratio = f.ratio
        rows.append((f.label, f.unit, _number(f.pilot), _number(f.kernel),
                     "-" if ratio is None else f"{ratio:.2f}x", f.goal))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) if i in (0, 1, 5) else cell.rjust(widths[i])
                               for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    env = report.environment
    lines.append("")
    lines.append(f"ratio: pilotsock relative to kernel TCP loopback (> 1 = pilotsock better), same run; "
                 f"Python {env['python']}, {env['cpus']} CPUs, Linux {env['kernel']}; {report.seconds:.0f} s")
    return "\n".join(lines)
