# SPDX-License-Identifier: Apache-2.0
"""Ring 3, the daemon's drivers: the only code that touches sockets, time and processes.

Entry point: ``python -m pilotsock.daemon``; composition root: :mod:`pilotsock.daemon.app`.
"""
