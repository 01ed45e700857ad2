# SPDX-License-Identifier: Apache-2.0
"""Run CPython's own test suites over pilotsock and compare them with kernel sockets.

``python -m compat_tests [--tier 1|2|all] [--suite NAME ...] [-j 2] [--report FILE] [--no-baseline]``

- Starts its own registry and daemon (temporary directory, loopback only).
- **Alias mode**: the installed ``test`` package, unmodified, run by regrtest in worker processes
  that ``sitecustomize`` patches with pilotsock in compat mode (IPv4 loopback = this node).
- **Baseline**: the same suites on kernel sockets, for the comparison column.
- Results come from regrtest's ``--junit-xml`` (never from its summary line), are checked against
  ``compat_tests/expected/<major.minor>.py`` (unexpected failures and NotYet entries that now pass
  both fail the run), and every networked suite must show virtual connections in the counters its
  worker processes write at exit; the daemon's per-process byte counts (by SO_PEERCRED pid) add
  the bytes each suite moved over Pilot, whatever path (send, sendfile, TLS) moved them.
- ``--strict``: a connect to the kernel's loopback that the alias does not cover (``::1``,
  ``127.0.0.2``) raises, so nothing passes by bypassing the virtual stack.
- Writes a Markdown report (and prints it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import runpy
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from compat_tests.kinds import Expected, Flaky, NotYet, Slow
from pilotsock.patch import COMPAT_SWITCH, patched_environment
from pilotsock.testing.processes import start_daemon, start_registry

HERE = Path(__file__).resolve().parent

TIER_1 = ["test_socketserver", "test_httpservers", "test_urllib2_localnet", "test_xmlrpc", "test_smtplib",
          "test_poplib", "test_asyncio.test_streams", "test_asyncio.test_sock_lowlevel", "test_httplib",
          "test_wsgiref", "test_telnetlib", "test_timeout"]
TIER_2 = ["test_ftplib", "test_ssl"]
# Run natively (compat_tests/native_socket.py): seams re-pointed at AF_PILOT sockets.
NATIVE_TIER_1 = ["test_socket"]
NATIVE_TIER_2 = ["test_selectors", "test_socket_udp"]
# Suites whose tests talk over sockets they create: they must show virtual connections.
NOT_NETWORKED = {"test_timeout"}
SUITE_TIMEOUT_SECONDS = 180


@dataclass
class SuiteResult:
    name: str
    outcomes: dict[str, str] = field(default_factory=dict)  # test id -> passed/failed/error/skipped
    counters: Counter[str] = field(default_factory=Counter)
    pids: set[int] = field(default_factory=set)

    def count(self, outcome: str) -> int:
        return sum(1 for value in self.outcomes.values() if value == outcome)


def load_expected() -> tuple[dict[str, Expected], str | None]:
    path = HERE / "expected" / f"{sys.version_info.major}.{sys.version_info.minor}.py"
    if not path.exists():
        return {}, None
    namespace = runpy.run_path(str(path))
    return dict(namespace["EXPECTED"]), namespace.get("MADE_ON")


def suite_of(test_id: str, suites: list[str]) -> str | None:
    """The requested suite a junit test id belongs to (longest match)."""
    matches = [suite for suite in suites if test_id.startswith(f"test.{suite}.")]
    return max(matches, key=len) if matches else None


def parse_junit(path: Path, suites: list[str]) -> dict[str, SuiteResult]:
    results = {suite: SuiteResult(suite) for suite in suites}
    if not path.exists():
        return results
    for case in ElementTree.parse(path).iter("testcase"):
        # 3.11's regrtest puts the whole test id in "name"; other writers split it with "classname".
        test_id = ".".join(part for part in (case.get("classname"), case.get("name")) if part)
        if not test_id.startswith("test."):
            test_id = f"test.{test_id}"
        suite = suite_of(test_id, suites)
        if suite is None:
            continue
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                break
        results[suite].outcomes[test_id] = outcome
    return results


def read_counters(directory: Path, results: dict[str, SuiteResult]) -> None:
    for path in directory.glob("*.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        argv = " ".join(data.get("argv", []))
        suite = max((name for name in results if f'"{name}"' in argv or argv.endswith(name)), key=len,
                    default=None)
        if suite is not None:
            results[suite].counters.update(data.get("counters", {}))
            if isinstance(data.get("pid"), int):
                results[suite].pids.add(data["pid"])


def add_traffic(results: dict[str, SuiteResult], traffic: list[list[int]]) -> None:
    """The daemon's per-pid stream byte counts, summed per suite."""
    by_pid = {row[0]: row for row in traffic}
    for result in results.values():
        for pid in result.pids:
            if pid in by_pid:
                _, streams, sent, received = by_pid[pid]
                result.counters["virtual.streams"] += streams
                result.counters["virtual.bytes"] += sent + received


def daemon_traffic(env: dict[str, str]) -> list[list[int]]:
    from pilotsock.client.locator import request

    reply = request({"op": "stats"}, home=env["PILOTSOCK_HOME"], autostart=False)
    return list(reply.get("traffic", []))


def run_regrtest(suites: list[str], env: dict[str, str], junit: Path, jobs: int, cwd: Path,
                 ignored: list[str]) -> int:
    command = [sys.executable, "-m", "test", f"-j{jobs}", "--timeout", str(SUITE_TIMEOUT_SECONDS), "-u", "network",
               "--junit-xml", str(junit)]
    if ignored:
        ignore_file = junit.parent / f"{junit.stem}.ignore"
        ignore_file.write_text("".join(f"{test_id}\n" for test_id in ignored))
        command += ["--ignorefile", str(ignore_file)]
    command += suites
    completed = subprocess.run(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=SUITE_TIMEOUT_SECONDS * max(len(suites), 1), check=False)
    (junit.parent / f"{junit.stem}.log").write_text(completed.stdout)
    return completed.returncode


def run_native(module: str, env: dict[str, str], output: Path, excluded: list[str], kernel: bool) -> SuiteResult:
    """A natively re-pointed suite on AF_PILOT sockets (or, as the baseline, on kernel ones)."""
    command = [sys.executable, "-m", "compat_tests.native_socket", str(output), "--module", module,
               *(["--kernel"] if kernel else [])]
    for test_id in excluded:
        command += ["--exclude", test_id]
    completed = subprocess.run(command, env=env, cwd=HERE.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=SUITE_TIMEOUT_SECONDS * 2, check=False)
    (output.parent / f"{output.stem}.log").write_text(completed.stdout)
    result = SuiteResult(f"{module} (native)")
    if output.exists():
        data = json.loads(output.read_text())
        result.outcomes.update(data["outcomes"])
        result.counters.update(data["counters"])
        result.pids.add(int(data["pid"]))
    return result


def classify(results: dict[str, SuiteResult], expected: dict[str, Expected]) -> tuple[list[str], list[str]]:
    """(unexpected failures, NotYet entries that passed)."""
    unexpected, stale = [], []
    for result in results.values():
        for test_id, outcome in sorted(result.outcomes.items()):
            entry = expected.get(test_id)
            if outcome in ("failed", "error") and entry is None:
                unexpected.append(f"{test_id}: {outcome}")
            elif outcome == "passed" and isinstance(entry, NotYet):
                stale.append(f"{test_id}: passes now, remove its NotYet entry")
    return unexpected, stale


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    return f"{count / 1024:.1f} KiB" if count < 1024 ** 2 else f"{count / 1024 ** 2:.1f} MiB"


def report(results: dict[str, SuiteResult], baseline: dict[str, SuiteResult] | None,
           expected: dict[str, Expected], seconds: float, mode: str = "alias") -> str:
    lines = [f"# Stdlib suites over pilotsock ({mode} mode), Python {platform.python_version()}", "",
             ("| suite | run | passed | skipped | failed | expected failures | kernel passed | ratio |"
              " virtual connects / accepts / binds / datagrams | virtual stream bytes | kernel connects |"),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    total_passed = total_kernel = 0
    for name, result in results.items():
        failed = result.count("failed") + result.count("error")
        known = sum(1 for test_id, outcome in result.outcomes.items()
                    if outcome in ("failed", "error") and test_id in expected)
        kernel = baseline[name].count("passed") if baseline else None
        total_passed += result.count("passed")
        total_kernel += kernel or 0
        ratio = f"{result.count('passed') / kernel:.1%}" if kernel else "-"
        c = result.counters
        lines.append(f"| {name} | {len(result.outcomes)} | {result.count('passed')} | {result.count('skipped')} "
                     f"| {failed} | {known} | {kernel if kernel is not None else '-'} | {ratio} "
                     f"| {c['virtual.connect']} / {c['virtual.accept']} / {c['virtual.bind']} / {c['virtual.datagram']} "
                     f"| {_size(c['virtual.bytes'])} | {c['kernel.connect']} |")
    overall = f"{total_passed / total_kernel:.1%}" if total_kernel else "-"
    lines += ["", (f"Passed over pilotsock: {total_passed}; on kernel sockets: {total_kernel or '-'} "
                   f"(ratio {overall}). Wall time {seconds:.1f} s.")]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat_tests", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tier", choices=["1", "2", "all"], default="1")
    parser.add_argument("--suite", action="append", help="run only these suites (repeatable)")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--report", type=Path, help="write the Markdown report here too")
    parser.add_argument("--no-baseline", action="store_true", help="skip the kernel-socket run")
    parser.add_argument("--strict", action="store_true",
                        help="a connect to the kernel's loopback that the alias does not cover raises")
    parser.add_argument("--run-flaky", action="store_true",
                        help="also run the Flaky/Slow entries (by default they are left out, so a flaky "
                             "test cannot disturb the tests after it)")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("test.support") is None:
        print("compat_tests: skipped: this Python has no stdlib 'test' package (Debian: libpython3-testsuite)")
        return 0
    suites = args.suite or {"1": TIER_1, "2": TIER_2, "all": TIER_1 + TIER_2}[args.tier]
    native = [] if args.suite else {"1": NATIVE_TIER_1, "2": NATIVE_TIER_2,
                                    "all": NATIVE_TIER_1 + NATIVE_TIER_2}[args.tier]
    expected, made_on = load_expected()
    if made_on is None:
        print(f"compat_tests: warning: no expected-failure list for Python {sys.version_info[0]}."
              f"{sys.version_info[1]}; every failure counts")
    elif made_on != platform.python_version():
        print(f"compat_tests: warning: the expected-failure list was made on {made_on}, this is "
              f"{platform.python_version()}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pilotsock-compat-") as temp:
        root = Path(temp)
        registry = start_registry(root / "registry")
        try:
            daemon = start_daemon(root / "node", registry.address, extra_args=["--public"])
            try:
                counters_dir = root / "counters"
                counters_dir.mkdir()
                env = patched_environment(daemon.env)
                env[COMPAT_SWITCH] = "strict" if args.strict else "alias"
                env["PILOTSOCK_COUNTERS_DIR"] = str(counters_dir)
                ignored = [] if args.run_flaky else sorted(
                    test_id for test_id, entry in expected.items() if isinstance(entry, (Flaky, Slow)))
                run_regrtest(suites, env, root / "alias.xml", args.jobs, root, ignored)
                results = parse_junit(root / "alias.xml", suites)
                read_counters(counters_dir, results)
                alias_log = (root / "alias.log").read_text()
                for module in native:
                    output = root / f"native-{module}.json"
                    results[f"{module} (native)"] = run_native(module, daemon.env, output, ignored, kernel=False)
                    alias_log += (root / f"native-{module}.log").read_text()
                add_traffic(results, daemon_traffic(daemon.env))
            finally:
                daemon.stop()
            baseline = None
            if not args.no_baseline:
                kernel_env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTSOCK_")}
                run_regrtest(suites, kernel_env, root / "kernel.xml", args.jobs, root, ignored)
                baseline = parse_junit(root / "kernel.xml", suites)
                for module in native:
                    baseline[f"{module} (native)"] = run_native(module, kernel_env, root / f"kernel-{module}.json",
                                                                ignored, kernel=True)
        finally:
            registry.stop()
    text = report(results, baseline, expected, time.monotonic() - started, "strict" if args.strict else "alias")
    print(text)
    if args.report:
        args.report.write_text(text)
    unexpected, stale = classify(results, expected)
    missing = [name for name, result in results.items() if not result.outcomes]
    silent = [name for name, result in results.items()
              if name not in NOT_NETWORKED and result.outcomes
              and result.counters["virtual.connect"] + result.counters["virtual.datagram"] == 0]
    problems = ([f"unexpected failure: {line}" for line in unexpected] + [f"stale entry: {line}" for line in stale]
                + [f"no results for {name} (see the regrtest log)" for name in missing]
                + [f"{name} made no virtual connection and sent no virtual datagram: the patch did not reach it" for name in silent])
    for line in problems:
        print(f"compat_tests: {line}")
    if problems:
        print(alias_log[-6000:])
    return 1 if problems else 0
