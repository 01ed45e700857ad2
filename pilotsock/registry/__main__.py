# SPDX-License-Identifier: Apache-2.0
"""``python -m pilotsock.registry``: run a registry with its co-located beacon.

    python -m pilotsock.registry --listen HOST:PORT --beacon HOST:PORT --db FILE
                                 [--state-file FILE] [--beacon-advertise HOST:PORT]
                                 [--log-level LEVEL]

Defaults are loopback only (``127.0.0.1:9000`` and ``127.0.0.1:9001``). After both sockets are
bound (ports may be 0) the state file, if asked for, is written atomically as
``{"registry": "host:port", "beacon": "host:port", "pid": N}`` and one line
``pilotsock registry listening on HOST:PORT beacon HOST:PORT`` is printed and flushed.
SIGTERM/SIGINT stop the server cleanly (connections closed, database closed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from pilotsock.endpoints import format_host_port, split_host_port
from pilotsock.registry.server import (
    DEFAULT_BEACON_ADDRESS,
    DEFAULT_REGISTRY_ADDRESS,
    RegistryServer,
    RegistryServerConfig,
    remove_state_file_if_ours,
    write_state_file,
)


def _host_port(text: str) -> tuple[str, int]:
    parsed = split_host_port(text)
    if parsed is None:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pilotsock.registry",
        description="Pilot Protocol registry (TCP) with a co-located beacon (UDP).",
    )
    parser.add_argument(
        "--listen",
        type=_host_port,
        default=DEFAULT_REGISTRY_ADDRESS,
        metavar="HOST:PORT",
        help="registry TCP address (default 127.0.0.1:9000)",
    )
    parser.add_argument(
        "--beacon",
        type=_host_port,
        default=DEFAULT_BEACON_ADDRESS,
        metavar="HOST:PORT",
        help="beacon UDP address (default 127.0.0.1:9001)",
    )
    parser.add_argument("--db", required=True, metavar="FILE", help="SQLite database file")
    parser.add_argument(
        "--state-file",
        type=Path,
        metavar="FILE",
        help="write the bound addresses and pid here as JSON once listening",
    )
    parser.add_argument(
        "--beacon-advertise",
        metavar="HOST:PORT",
        help="beacon address reported by beacon_list (default: the bound one)",
    )
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


async def serve(args: argparse.Namespace) -> None:
    """Run until SIGTERM/SIGINT."""
    config = RegistryServerConfig(
        db_path=args.db,
        listen=args.listen,
        beacon=args.beacon,
        beacon_advertise=args.beacon_advertise,
    )
    server = RegistryServer(config)
    await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    pid = os.getpid()
    registry_text = format_host_port(*server.registry_address)
    beacon_text = format_host_port(*server.beacon_address) if server.beacon_address else ""
    try:
        if args.state_file is not None:
            write_state_file(args.state_file, registry_text, beacon_text, pid)
        with contextlib.suppress(OSError):  # stdout gone (detached parent): keep serving
            print(f"pilotsock registry listening on {registry_text} beacon {beacon_text}", flush=True)
        await stop.wait()
    finally:
        if args.state_file is not None:
            remove_state_file_if_ours(args.state_file, pid)
        await server.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        print(f"pilotsock registry: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
