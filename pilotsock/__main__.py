# SPDX-License-Identifier: Apache-2.0
"""``python -m pilotsock info|bench|gateway|expose``: node identity, benchmarks, TCP bridges.

``info [--json]``: this node's address, node ID, hostname and registry.
``gateway --listen HOST:PORT --to ADDR:PORT``: local TCP -> Pilot; ``expose --port N --to
HOST:PORT``: Pilot -> local TCP (:mod:`pilotsock.gateway`).

Starts the per-user daemon if none runs for the home (``PILOTSOCK_HOME``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


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


def _bench(args: argparse.Namespace) -> int:
    if not args.via_emulator:
        from pilotsock.benchmarks import suite

        settings = suite.Settings(bulk_mb=args.bulk_mb, echo_mb=args.echo_mb, dials=args.dials, pings=args.pings,
                                  http_clients=args.http_clients, http_seconds=args.http_seconds,
                                  idle_seconds=args.idle_seconds, loopback_mss=args.loopback_mss, busy_poll_us=args.busy_poll_us)
        result = suite.run(settings)
        print(json.dumps(result.as_json(), indent=2) if args.json else suite.format_table(result))
        return 0
    from pilotsock.benchmarks.emulated_path import run_via_emulator

    report = run_via_emulator(rtt_ms=args.rtt_ms, loss=args.loss, seconds=args.seconds, rate_mbps=args.rate_mbps,
                              congestion_control=args.congestion_control,
                              receive_buffer_bytes=args.receive_buffer_bytes,
                              send_buffer_bytes=args.send_buffer_bytes)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"one-way through the link emulator (RTT {report['rtt_ms']:.0f} ms, loss {report['loss']:.2%}, "
              f"controller {report['congestion_control']}): {report['mb_per_s']:.2f} MB/s "
              f"({report['bytes'] / 1e6:.1f} MB in {report['seconds']:.2f} s)")
        sender = report["sender"]
        print(f"sender: {sender.get('stream.retransmissions', 0)} retransmissions, "
              f"{sender.get('stream.fast_retransmits', 0)} recoveries, {sender.get('stream.timeouts', 0)} timeouts, "
              f"{sender.get('stream.tail_loss_probes', 0)} tail-loss probes, "
              f"{sender.get('stream.spurious_retransmissions', 0)} spurious; "
              f"{sender.get('stream.segments_sent', 0)} segments sent")
        inbound = report["link"].get("inbound", {})
        if inbound:
            print(f"link A->B: {inbound['received']} datagrams in, {inbound['lost']} dropped as loss, "
                  f"{inbound['queue_dropped']} dropped by the rate limit")
    return 0


def _gateway(args: argparse.Namespace) -> int:
    from pilotsock import gateway

    listen = gateway.split_host_port(args.listen)
    target = gateway.split_host_port(args.to)
    return gateway.run(lambda: gateway.start_gateway(listen, target, connect_timeout=args.connect_timeout),
                       lambda server: f"gateway: tcp {_bound(server)} -> pilot {target[0]}:{target[1]} (Ctrl-C stops)")


def _expose(args: argparse.Namespace) -> int:
    from pilotsock import gateway

    target = gateway.split_host_port(args.to)
    return gateway.run(lambda: gateway.start_expose(args.port, target, connect_timeout=args.connect_timeout),
                       lambda server: f"expose: pilot {_bound(server)} -> tcp {target[0]}:{target[1]} (Ctrl-C stops)")


def _bound(server: Any) -> str:
    host, port = server.sockets[0].getsockname()[:2]
    return f"{host}:{port}"


def main(argv: list[str] | None = None) -> int:
    from pilotsock.benchmarks.suite import Settings

    parser = argparse.ArgumentParser(prog="python -m pilotsock")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="show this node's identity")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(run=_info)
    bench = commands.add_parser("bench", help="pilotsock beside kernel TCP, with its own registry and daemons")
    defaults = Settings()
    bench.add_argument("--bulk-mb", type=int, default=defaults.bulk_mb, help="(a) one-way bulk size, MB")
    bench.add_argument("--echo-mb", type=int, default=defaults.echo_mb, help="(b) echo bulk size, MB")
    bench.add_argument("--dials", type=int, default=defaults.dials, help="(c) connections to time")
    bench.add_argument("--pings", type=int, default=defaults.pings, help="(d) 8-byte round trips to time")
    bench.add_argument("--http-clients", type=int, default=defaults.http_clients, help="(e) the larger client count")
    bench.add_argument("--http-seconds", type=float, default=defaults.http_seconds, help="(e, f) run time per load")
    bench.add_argument("--idle-seconds", type=float, default=defaults.idle_seconds, help="(h) idle window")
    bench.add_argument("--loopback-mss", type=int, default=None,
                       help="segment size between the daemons (0: the Internet-safe 1400, as off loopback)")
    bench.add_argument("--busy-poll-us", type=float, default=None,
                       help="the daemons poll this long after activity before sleeping (default: off)")
    bench.add_argument("--via-emulator", action="store_true",
                       help="instead: one-way throughput through the user-space link emulator")
    bench.add_argument("--rtt-ms", type=float, default=100.0)
    bench.add_argument("--loss", type=float, default=0.005)
    bench.add_argument("--rate-mbps", type=float, default=0.0, help="emulated link rate, MB/s (0 = unlimited)")
    bench.add_argument("--seconds", type=float, default=10.0)
    bench.add_argument("--congestion-control", default=None)
    bench.add_argument("--receive-buffer-bytes", type=int, default=None)
    bench.add_argument("--send-buffer-bytes", type=int, default=None)
    bench.add_argument("--json", action="store_true")
    bench.set_defaults(run=_bench)
    gateway = commands.add_parser("gateway", help="local TCP port -> a Pilot address:port (for curl, browsers)")
    gateway.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT",
                         help="local TCP address to listen on (default 127.0.0.1:8080)")
    gateway.add_argument("--to", required=True, metavar="ADDR:PORT", help="Pilot address (or NAME.pilot) and port")
    gateway.add_argument("--connect-timeout", type=float, default=10.0)
    gateway.set_defaults(run=_gateway)
    expose = commands.add_parser("expose", help="a Pilot port of this node -> a local TCP service")
    expose.add_argument("--port", type=int, required=True, help="Pilot port to listen on")
    expose.add_argument("--to", required=True, metavar="HOST:PORT", help="local TCP service (e.g. 127.0.0.1:5432)")
    expose.add_argument("--connect-timeout", type=float, default=10.0)
    expose.set_defaults(run=_expose)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
