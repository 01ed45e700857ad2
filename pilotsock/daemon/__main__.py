# SPDX-License-Identifier: Apache-2.0
"""``python -m pilotsock.daemon``: run the per-user Pilot daemon.

    python -m pilotsock.daemon [--registry HOST:PORT] [--listen HOST:PORT] [--endpoint HOST:PORT]
                               [--public] [--hostname NAME] [--home DIR] [--beacon HOST:PORT]

With no ``--registry`` (and no ``PILOTSOCK_REGISTRY``), the daemon starts or joins the user's local
registry on loopback. ``--detach`` forks into the background once the local API is ready (what a
client uses when it starts a daemon on demand).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path

from pilotsock.config import DaemonConfig, TransportConfig, default_home
from pilotsock.endpoints import is_loopback_host


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pilotsock.daemon", description="Run a Pilot daemon.")
    parser.add_argument("--home", type=Path, help="daemon home (default: $PILOTSOCK_HOME or ~/.pilotsock)")
    parser.add_argument("--registry", metavar="HOST:PORT",
                        help="registry address (default: $PILOTSOCK_REGISTRY or the local registry)")
    parser.add_argument("--beacon", metavar="HOST:PORT", help="beacon address (default: ask the registry)")
    parser.add_argument("--listen", metavar="HOST:PORT", help="UDP tunnel address (default 127.0.0.1:0 with a "
                        "loopback registry, else 0.0.0.0:0)")
    parser.add_argument("--endpoint", metavar="HOST:PORT", help="UDP address to register instead of the "
                        "discovered one")
    visibility = parser.add_mutually_exclusive_group()
    visibility.add_argument("--public", action="store_true", default=None,
                            help="let any node resolve this node's address (default with the local registry)")
    visibility.add_argument("--private", dest="public", action="store_false",
                            help="only trusted nodes may resolve this node (default with a configured registry)")
    parser.add_argument("--hostname", help="register this hostname")
    parser.add_argument("--no-echo", action="store_true", help="disable the built-in echo service on port 7")
    parser.add_argument("--log-level", default=os.environ.get("PILOTSOCK_LOG_LEVEL", "INFO"))
    parser.add_argument("--detach", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--heartbeat-interval", type=float, default=30.0, help=argparse.SUPPRESS)
    parser.add_argument("--congestion-control", default=None, metavar="NAME",
                        help="stream congestion controller (default: the transport's default)")
    parser.add_argument("--receive-buffer-bytes", type=int, default=None, metavar="N",
                        help="per-stream receive buffer, i.e. the largest advertised window")
    parser.add_argument("--send-buffer-bytes", type=int, default=None, metavar="N",
                        help="per-stream send buffer (unsent plus unacknowledged bytes)")
    parser.add_argument("--busy-poll-us", type=float, default=None, metavar="US",
                        help="poll this long after activity before sleeping (0: never)")
    parser.add_argument("--loopback-mss", type=int, default=None, metavar="N",
                        help="segment size to peers over the host's loopback (0: the Internet-safe default)")
    return parser


def _is_loopback(host_port: str | None) -> bool:
    if host_port is None:
        return True
    return is_loopback_host(host_port.rpartition(":")[0].strip("[]"))


def config_from_args(args: argparse.Namespace) -> DaemonConfig:
    home = args.home.expanduser() if args.home else default_home()
    registry = args.registry or os.environ.get("PILOTSOCK_REGISTRY") or None
    beacon = args.beacon or os.environ.get("PILOTSOCK_BEACON") or None
    listen = args.listen or ("127.0.0.1:0" if _is_loopback(registry) else "0.0.0.0:0")
    # Every node on the per-user local registry belongs to the same user: public unless asked.
    public = args.public if args.public is not None else registry is None
    transport = TransportConfig()
    if args.congestion_control:
        transport = dataclasses.replace(transport, congestion_control=args.congestion_control)
    if args.receive_buffer_bytes:
        transport = dataclasses.replace(transport, receive_buffer_bytes=args.receive_buffer_bytes)
    if args.send_buffer_bytes:
        transport = dataclasses.replace(transport, send_buffer_bytes=args.send_buffer_bytes)
    if args.loopback_mss is not None:
        transport = dataclasses.replace(transport, loopback_mss=args.loopback_mss)
    config = DaemonConfig(transport=transport, home=home.resolve(), registry=registry, beacon=beacon, listen=listen,
                          endpoint=args.endpoint, public=public, hostname=args.hostname, echo=not args.no_echo,
                          heartbeat_interval=args.heartbeat_interval)
    if args.busy_poll_us is not None:
        config = dataclasses.replace(config, busy_poll_seconds=args.busy_poll_us / 1e6)
    return config


async def _run(config: DaemonConfig, ready_fd: int | None) -> int:
    from pilotsock.daemon.app import Daemon
    from pilotsock.daemon.home import AlreadyRunning

    daemon = Daemon(config)
    try:
        await daemon.start()
    except AlreadyRunning as exc:
        _report(ready_fd, f"already running: {exc}")
        return 3
    except Exception as exc:
        logging.getLogger("pilotsock.daemon").exception("start failed")
        _report(ready_fd, f"start failed: {exc}")
        await daemon.shutdown()
        return 1
    _report(ready_fd, "ok")
    print(f"pilotsock daemon {daemon.own} ready; control socket {config.control_socket_path}", flush=True)
    await daemon.run_until_stopped()
    return 0


def _report(fd: int | None, message: str) -> None:
    if fd is None:
        return
    try:
        os.write(fd, message.encode()[:500])
        os.close(fd)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    if "ssl" not in sys.modules:
        # The daemon speaks no TLS (its tunnels use the cryptography package): without this,
        # asyncio loads the ssl module and libssl for nothing, 4 MiB of every daemon's RSS.
        sys.modules["ssl"] = None  # type: ignore[assignment]
    import asyncio

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    config = config_from_args(args)
    ready_fd = None
    if args.detach:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid > 0:  # the parent waits for the child's verdict, then exits (no zombie left behind)
            os.close(write_end)
            chunks = []
            while True:
                chunk = os.read(read_end, 512)
                if not chunk:
                    break
                chunks.append(chunk)
            message = b"".join(chunks).decode(errors="replace")
            if message != "ok":
                print(message or "daemon exited during start-up", file=sys.stderr)
                return 3 if message.startswith("already running") else 1
            return 0
        os.close(read_end)
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        ready_fd = write_end
    _raise_fd_limit()
    try:
        if not hasattr(asyncio, "Runner"):  # Python 3.10: the stock selector
            return asyncio.run(_run(config, ready_fd))
        from pilotsock.daemon.busy_poll import BusyPollSelector

        def new_loop() -> asyncio.AbstractEventLoop:
            return asyncio.SelectorEventLoop(BusyPollSelector(config.busy_poll_seconds))

        with asyncio.Runner(loop_factory=new_loop) as runner:
            return int(runner.run(_run(config, ready_fd)))
    except KeyboardInterrupt:
        return 0


def _raise_fd_limit() -> None:
    """Every stream costs the daemon one fd (its end of the application's pair), a same-node
    stream two: take the hard limit instead of the usual soft 1024 (best effort)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


if __name__ == "__main__":
    sys.exit(main())
