"""Tier 1 of compat_tests through the README's test command: CPython's own suites, unmodified,
over a real daemon (alias mode, and test_socket's TCP classes in native mode on AF_PILOT sockets),
compared with the same suites on kernel sockets."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from compat_tests.kinds import Flaky, NotYet
from compat_tests.runner import SuiteResult, add_traffic, classify, parse_junit, report, suite_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_tier_1_passes_like_kernel_sockets(tmp_path: Path) -> None:
    report_file = tmp_path / "report.md"
    result = subprocess.run([sys.executable, "-m", "compat_tests", "--tier", "1", "-j2", "--strict",
                             "--report", str(report_file)],
                            cwd=ROOT, capture_output=True, text=True, timeout=540, check=False)
    problems = "\n".join(line for line in result.stdout.splitlines() if line.startswith("compat_tests:"))
    assert result.returncode == 0, problems + "\n" + result.stdout[-3000:] + result.stderr[-2000:]
    text = report_file.read_text()
    run, passed = re.search(r"\| test_asyncio\.test_sock_lowlevel \| (\d+) \| (\d+) \|", text).groups()  # type: ignore[union-attr]
    assert int(run) >= 38 and passed == run, text  # it needs a real non-blocking connect
    run, passed = re.search(r"\| test_socket \(native\) \| (\d+) \| (\d+) \|", text).groups()  # type: ignore[union-attr]
    assert int(run) >= 190 and int(passed) >= int(run) - 2, text  # test_socket's TCP classes on AF_PILOT
    ratio = float(text.split("(ratio ")[1].split("%")[0])
    assert ratio >= 97.0, text
    # The daemon counted the bytes of the suites' processes (strict mode: none went to kernel loopback).
    assert "(strict mode)" in text
    moved = re.search(r"\| test_socketserver \|(?:[^|]*\|){8} ([\d.]+ [KM]i?B) \|", text)
    assert moved is not None and not moved.group(1).startswith("0 "), text


def test_junit_parsing_and_classification(tmp_path: Path) -> None:
    junit = tmp_path / "j.xml"
    junit.write_text(
        '<testsuites><testsuite>'
        '<testcase name="test.test_a.T.test_ok" status="run" />'
        '<testcase name="test.test_a.T.test_bad" status="run"><failure message="x" /></testcase>'
        '<testcase name="test.test_a.T.test_known" status="run"><error message="x" /></testcase>'
        '<testcase name="test.test_a.T.test_fixed" status="run" />'
        '<testcase classname="test.test_asyncio.test_streams.S" name="test_skip"><skipped /></testcase>'
        '</testsuite></testsuites>')
    suites = ["test_a", "test_asyncio.test_streams"]
    results = parse_junit(junit, suites)
    assert results["test_a"].count("passed") == 2 and results["test_a"].count("failed") == 1
    assert results["test_asyncio.test_streams"].count("skipped") == 1
    expected = {"test.test_a.T.test_known": Flaky("x"), "test.test_a.T.test_fixed": NotYet("y")}
    unexpected, stale = classify(results, expected)
    assert unexpected == ["test.test_a.T.test_bad: failed"]
    assert stale == ["test.test_a.T.test_fixed: passes now, remove its NotYet entry"]
    assert suite_of("test.test_asyncio.test_streams.S.t", ["test_asyncio", "test_asyncio.test_streams"]) == (
        "test_asyncio.test_streams")
    text = report(results, {"test_a": SuiteResult("test_a", {"t": "passed"}),
                            "test_asyncio.test_streams": SuiteResult("x")}, expected, 1.0)
    assert "| test_a | 4 | 2 | 0 | 2 | 1 | 1 | 200.0% |" in text


def test_traffic_is_summed_per_suite_by_pid() -> None:
    results = {"a": SuiteResult("a", pids={10, 11}), "b": SuiteResult("b", pids={12})}
    add_traffic(results, [[10, 2, 100, 50], [11, 1, 5, 5], [99, 7, 7, 7]])
    assert results["a"].counters["virtual.streams"] == 3 and results["a"].counters["virtual.bytes"] == 160
    assert results["b"].counters["virtual.bytes"] == 0
