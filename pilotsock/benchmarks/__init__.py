# SPDX-License-Identifier: Apache-2.0
"""Benchmarks that start their own registry and daemons: ``python -m pilotsock bench``.

- :mod:`pilotsock.benchmarks.suite`: pilotsock beside kernel TCP loopback, figures (a)-(h).
- :mod:`pilotsock.benchmarks.workloads`: the client and server programs both stacks run.
- :mod:`pilotsock.benchmarks.emulated_path`: one-way throughput through the link emulator.
"""
