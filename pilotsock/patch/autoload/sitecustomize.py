# SPDX-License-Identifier: Apache-2.0
"""Patches this Python process with pilotsock when ``PILOTSOCK_PATCH=1`` (the directory is put on
``PYTHONPATH`` by ``python -m pilotsock.patch``), with loopback aliasing when also
``PILOTSOCK_COMPAT=alias`` (``strict``: aliasing, and a kernel loopback connect raises); then runs
the ``sitecustomize`` this one hides."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


def _chain() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    others = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


if os.environ.get("PILOTSOCK_PATCH") == "1":
    import pilotsock.patch

    pilotsock.patch.patch_from_environment()
    if os.environ.get("PILOTSOCK_COUNTERS_DIR"):
        pilotsock.patch.write_counters_at_exit(os.environ["PILOTSOCK_COUNTERS_DIR"])
_chain()
