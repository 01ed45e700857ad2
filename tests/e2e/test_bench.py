"""``python -m pilotsock bench`` end to end at a small size: every figure (a)-(h) is produced
for both stacks from real daemons and real stdlib clients. The speed goals live in the benchmark's
output, never in assertions here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pilotsock.benchmarks.suite import Figure, Report, format_table


@pytest.mark.timeout(240)
def test_bench_reports_every_figure_for_both_stacks() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pilotsock", "bench", "--json", "--bulk-mb", "8", "--echo-mb", "4", "--dials", "50",
         "--pings", "200", "--http-clients", "2", "--http-seconds", "0.5", "--idle-seconds", "0.5"],
        capture_output=True, text=True, timeout=220, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "bench: 15/15" in result.stderr  # progress, one line per step when not on a terminal
    report = json.loads(result.stdout)
    figures = {f["key"]: f for f in report["figures"]}
    compared = ["one_way", "echo", "dial_p50", "dial_p99", "rtt_p50", "rtt_p99", "http_keepalive_1",
                "http_keepalive_2", "http_new_connection"]
    for key in compared:
        assert figures[key]["pilot"] > 0 and figures[key]["kernel"] > 0 and figures[key]["ratio"] > 0, key
    assert figures["cpu_per_gb"]["pilot"] > 0
    assert 1 < figures["peak_rss"]["pilot"] < 1024
    assert 0 <= figures["idle_cpu"]["pilot"] < 100
    assert report["settings"]["bulk_mb"] == 8 and report["environment"]["cpus"] >= 1


def test_ratio_always_reads_higher_is_better_and_the_table_shows_it() -> None:
    faster = Figure("x", "throughput", "MB/s", pilot=50.0, kernel=100.0)
    quicker = Figure("y", "latency", "ms", pilot=0.2, kernel=0.1, higher_is_better=False)
    alone = Figure("z", "rss", "MiB", pilot=30.0, higher_is_better=False)
    assert faster.ratio == 0.5 and quicker.ratio == 0.5 and alone.ratio is None
    text = format_table(Report([faster, quicker, alone], {}, {"python": "3", "cpus": 2, "kernel": "6"}, 1.0))
    assert "0.50x" in text and text.count("\n") >= 5
