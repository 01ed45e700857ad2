# SPDX-License-Identifier: Apache-2.0
"""``python -m pilotsock info [--json]``: this node's address, node ID, hostname and registry.

Starts the per-user daemon if none runs for the home (``PILOTSOCK_HOME``).
"""

from __future__ import annotations

import argparse
import json
import sys


def _info(args: argparse.Namespace) -> int:
    from pilotsock.client.locator import request

    try:
        reply = request({"op": "info"})
    except OSError as exc:
        print(f"pilotsock: cannot reach the daemon: {exc}", file=sys.stderr)
        return 1
    if not reply.get("ok"):
        print(f"pilotsock: daemon error: {reply.get('detail')}", file=sys.stderr)
        return 1
    reply.pop("ok", None)
    if args.json:
        print(json.dumps(reply, indent=2, sort_keys=True))
        return 0
    rows = [("address", reply.get("address")), ("url host", reply.get("alias")), ("node id", reply.get("node_id")),
            ("hostname", reply.get("hostname") or "-"), ("registry", reply.get("registry")),
            ("beacon", reply.get("beacon")), ("endpoint", reply.get("endpoint")), ("home", reply.get("home")),
            ("public", reply.get("public")), ("daemon pid", reply.get("pid"))]
    for name, value in rows:
        print(f"{name:<11} {value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pilotsock")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="show this node's identity")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(run=_info)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
