# SPDX-License-Identifier: Apache-2.0
"""``python -m pilotsock.http --port N --directory DIR [--bind ADDR]``: serve files over Pilot,
like ``python -m http.server`` but on a Pilot port of this node; ``python -m pilotsock.http get URL
[-o FILE]`` fetches one (see :mod:`pilotsock.http.fetch`)."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["get"]:
        from pilotsock.http.fetch import main as fetch_main

        return fetch_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m pilotsock.http",
                                     epilog="python -m pilotsock.http get URL [-o FILE] fetches a URL.",
                                     description="Serve a directory over HTTP on a Pilot port of this node.")
    parser.add_argument("--port", type=int, default=8000, help="Pilot port (default 8000)")
    parser.add_argument("--directory", "-d", default=os.getcwd(), help="directory to serve (default: current)")
    parser.add_argument("--bind", "-b", default="", metavar="ADDR",
                        help="this node's virtual address (default: this node)")
    parser.add_argument("--protocol", "-p", default="HTTP/1.1", metavar="VERSION",
                        help="HTTP version to answer with (default HTTP/1.1, so keep-alive works)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("port must be 0-65535")
    from pilotsock.http.server import serve

    try:
        serve(args.port, args.directory, args.bind, protocol=args.protocol)
    except OSError as exc:
        print(f"pilotsock.http: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
