# SPDX-License-Identifier: Apache-2.0
"""The programs at both ends of every benchmark, identical on kernel TCP and on pilotsock.

``python -m pilotsock.benchmarks.workloads ROLE --family kernel|pilot ...`` runs one role in its
own process and prints one JSON line with its result:

- ``serve``: a thread-per-connection server whose first byte picks the service: ``S`` sink (read
  to EOF, answer the byte count), ``E`` echo, ``P`` 8-byte ping-pong; a connection that sends
  nothing is closed (the dial test). Prints ``{"port": N}`` once listening.
- ``one-way``, ``echo``, ``dial``, ``rtt``: the clients of those services.
- ``http-server``: the stdlib ``http.server`` (ThreadingHTTPServer, HTTP/1.1, a 152-byte body,
  ``disable_nagle_algorithm``); on
  ``pilot`` the process is patched with :mod:`pilotsock.patch` and binds this node's address.
- ``http-client``: ``http.client`` requests until a deadline, keep-alive or one connection each.

``kernel`` uses the stdlib on 127.0.0.1; ``pilot`` uses :mod:`pilotsock.socket` with the daemon
of ``$PILOTSOCK_HOME``. Every loop is bounded by a count or a deadline.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from types import ModuleType
from typing import Any

CHUNK_BYTES = 256 * 1024
PING_BYTES = 8
HTTP_BODY = b"x" * 152
STOP_AFTER_SECONDS = 300.0  # no workload process outlives this, whatever happens to its peer


def _stack(family: str) -> ModuleType:
    import importlib

    return importlib.import_module("pilotsock.socket" if family == "pilot" else "socket")


def _listen(family: str, port: int) -> Any:
    stack = _stack(family)
    if family == "pilot":
        return stack.create_server(("", port), family=stack.AF_PILOT, backlog=1024)
    return stack.create_server(("127.0.0.1", port), backlog=1024)


def _connect(family: str, host: str, port: int) -> Any:
    stack = _stack(family)
    sock = stack.create_connection((host, port), timeout=30)
    sock.settimeout(None)  # blocking: a timeout makes CPython poll before every call
    return sock


def _nodelay(sock: Any) -> None:
    import socket

    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _recv_exactly(sock: Any, count: int) -> bytes:
    data = b""
    while len(data) < count:
        piece = sock.recv(count - len(data))
        if not piece:
            raise ConnectionError("peer closed early")
        data += piece
    return data


# -- server --------------------------------------------------------------------------------------

def _serve_connection(conn: Any) -> None:
    with conn:
        try:
            kind = conn.recv(1)
            if kind == b"S":
                buffer = bytearray(1 << 20)
                total = 0
                while count := conn.recv_into(buffer):
                    total += count
                conn.sendall(total.to_bytes(8, "big"))
            elif kind == b"E":
                buffer = bytearray(CHUNK_BYTES)
                view = memoryview(buffer)
                while count := conn.recv_into(buffer):
                    conn.sendall(view[:count])
            elif kind == b"P":
                _nodelay(conn)
                while True:
                    data = conn.recv(PING_BYTES)
                    if not data:
                        break
                    if len(data) < PING_BYTES:
                        data += _recv_exactly(conn, PING_BYTES - len(data))
                    conn.sendall(data)
        except OSError:
            pass  # a client that went away ends its connection, never the server


def serve(args: argparse.Namespace) -> dict[str, Any]:
    server = _listen(args.family, args.port)
    print(json.dumps({"port": server.getsockname()[1]}), flush=True)
    deadline = time.monotonic() + STOP_AFTER_SECONDS
    server.settimeout(1.0)
    while time.monotonic() < deadline:
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        conn.settimeout(None)
        threading.Thread(target=_serve_connection, args=(conn,), daemon=True).start()
    return {}


# -- clients -------------------------------------------------------------------------------------

def one_way(args: argparse.Namespace) -> dict[str, Any]:
    chunk = memoryview(b"\x5a" * CHUNK_BYTES)
    with _connect(args.family, args.host, args.port) as sock:
        started = time.perf_counter()
        sock.sendall(b"S")
        left = args.bytes
        while left > 0:
            sock.sendall(chunk[:min(left, CHUNK_BYTES)])
            left -= CHUNK_BYTES
        sock.shutdown(1)  # SHUT_WR: the server answers the count after EOF
        received = int.from_bytes(_recv_exactly(sock, 8), "big")
        seconds = time.perf_counter() - started
    if received != args.bytes:
        raise RuntimeError(f"the sink counted {received} bytes of {args.bytes}")
    return {"bytes": args.bytes, "seconds": seconds}


def echo(args: argparse.Namespace) -> dict[str, Any]:
    chunk = memoryview(b"\xa5" * CHUNK_BYTES)
    buffer = bytearray(1 << 20)
    with _connect(args.family, args.host, args.port) as sock:
        started = time.perf_counter()
        sock.sendall(b"E")

        def send_all() -> None:
            left = args.bytes
            while left > 0:
                sock.sendall(chunk[:min(left, CHUNK_BYTES)])
                left -= CHUNK_BYTES
            sock.shutdown(1)

        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        received = 0
        while received < args.bytes:
            count = sock.recv_into(buffer)
            if not count:
                break
            received += count
        seconds = time.perf_counter() - started
        sender.join(30)
    if received != args.bytes:
        raise RuntimeError(f"echoed {received} bytes of {args.bytes}")
    return {"bytes": args.bytes, "seconds": seconds}


def dial(args: argparse.Namespace) -> dict[str, Any]:
    samples = []
    deadline = time.monotonic() + args.max_seconds
    for _ in range(args.count):
        started = time.perf_counter()
        sock = _connect(args.family, args.host, args.port)
        samples.append(time.perf_counter() - started)
        sock.close()
        if time.monotonic() > deadline:
            break
    return {"samples": samples}


def rtt(args: argparse.Namespace) -> dict[str, Any]:
    samples = []
    message = b"12345678"
    deadline = time.monotonic() + args.max_seconds
    with _connect(args.family, args.host, args.port) as sock:
        _nodelay(sock)
        sock.sendall(b"P")
        for _ in range(args.count):
            started = time.perf_counter()
            sock.sendall(message)
            _recv_exactly(sock, PING_BYTES)
            samples.append(time.perf_counter() - started)
            if time.monotonic() > deadline:
                break
    return {"samples": samples}


# -- HTTP ----------------------------------------------------------------------------------------

def http_server(args: argparse.Namespace) -> dict[str, Any]:
    import http.server

    host = "127.0.0.1"
    if args.family == "pilot":
        from pilotsock import patch
        from pilotsock.client.names import own_address

        patch.patch_all()
        host = str(own_address())

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # The stdlib's own switch. Without it the headers and the body leave as two writes, and
        # on kernel TCP Nagle then waits for the client's delayed ACK: ~25 keep-alive req/s.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # the stdlib's method name
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(HTTP_BODY)))
            self.end_headers()
            self.wfile.write(HTTP_BODY)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, args.port), Handler)
    server.daemon_threads = True
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    timer = threading.Timer(STOP_AFTER_SECONDS, server.shutdown)
    timer.daemon = True
    timer.start()
    server.serve_forever(poll_interval=0.5)
    return {}


def http_client(args: argparse.Namespace) -> dict[str, Any]:
    import http.client

    if args.family == "pilot":
        from pilotsock import patch

        patch.patch_all()
    time.sleep(max(0.0, args.start_at - time.time()))  # every client starts together
    deadline = time.perf_counter() + args.seconds
    requests = 0
    connection = None
    while time.perf_counter() < deadline:
        if connection is None:
            connection = http.client.HTTPConnection(args.host, args.port, timeout=30)
        headers = {} if args.keep_alive else {"Connection": "close"}
        connection.request("GET", "/", headers=headers)
        response = connection.getresponse()
        if response.read() != HTTP_BODY:
            raise RuntimeError("unexpected body")
        requests += 1
        if not args.keep_alive:
            connection.close()
            connection = None
    if connection is not None:
        connection.close()
    return {"requests": requests, "seconds": args.seconds}


ROLES = {"serve": serve, "one-way": one_way, "echo": echo, "dial": dial, "rtt": rtt,
         "http-server": http_server, "http-client": http_client}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m pilotsock.benchmarks.workloads")
    parser.add_argument("role", choices=sorted(ROLES))
    parser.add_argument("--family", choices=["kernel", "pilot"], required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bytes", type=int, default=64 << 20)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="a client stops sampling after this")
    parser.add_argument("--seconds", type=float, default=3.0, help="HTTP client run time")
    parser.add_argument("--start-at", type=float, default=0.0, help="HTTP client start (time.time())")
    parser.add_argument("--keep-alive", action="store_true")
    args = parser.parse_args(argv)
    result = ROLES[args.role](args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
