# SPDX-License-Identifier: Apache-2.0
"""``python -m pilotsock.patch script.py [args] | -m module [args] | -c code [args]``: run a
program with pilotsock installed from its first line (like ``python -m gevent.monkey``); Python
child processes it starts are patched too (``PILOTSOCK_PATCH=1`` plus the autoload path)."""

from __future__ import annotations

import os
import runpy
import sys

from pilotsock import patch

USAGE = "usage: python -m pilotsock.patch (script.py | -m module | -c code) [args ...]"


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or (argv[0] in ("-m", "-c") and len(argv) < 2):
        print(USAGE, file=sys.stderr if argv[:1] not in (["-h"], ["--help"]) else sys.stdout)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    os.environ.update(patch.patched_environment())
    patch.patch_from_environment()
    if argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    elif argv[0] == "-c":
        sys.argv = ["-c", *argv[2:]]
        sys.path.insert(0, "")
        exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})  # noqa: S102
    else:
        sys.argv = list(argv)
        sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
        runpy.run_path(argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
