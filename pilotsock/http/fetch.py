# SPDX-License-Identifier: Apache-2.0
"""``python -m pilotsock.http get URL [-o FILE]``: fetch a URL over Pilot from the shell.

Pilot hosts (``N-NNNN-HHHH-LLLL.pilot``, ``name.pilot``, the canonical form) go over virtual
sockets; any other host over kernel TCP, so the command works like a small ``curl``. Follows up
to 5 redirects, streams the body to a file or stdout, and draws a progress bar on stderr for
downloads when stderr is a terminal (or with ``--progress``).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import sys
import time
import urllib.parse
from typing import IO, Any

from pilotsock import socket as pilot_socket
from pilotsock.addresses import is_virtual_host
from pilotsock.http.client import PilotHTTPConnection

CHUNK_BYTES = 256 * 1024
MAX_REDIRECTS = 5


class PilotHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS over a virtual socket, verified with a ``pilotsock.ssl`` context."""

    def connect(self) -> None:
        sock = pilot_socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class Progress:
    """A one-line progress bar (bytes, percentage when the size is known, rate), redrawn at most
    ten times a second."""

    def __init__(self, out: IO[str], total: int | None) -> None:
        self.out = out
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self._drawn = 0.0

    def update(self, count: int, *, final: bool = False) -> None:
        self.done += count
        now = time.monotonic()
        if not final and now - self._drawn < 0.1:
            return
        self._drawn = now
        rate = self.done / max(now - self.started, 1e-6)
        if self.total:
            share = min(self.done / self.total, 1.0)
            bar = "#" * int(share * 30)
            line = f"[{bar:<30}] {share:6.1%} {self.done / 1e6:8.1f} / {self.total / 1e6:.1f} MB"
        else:
            line = f"{self.done / 1e6:8.1f} MB"
        self.out.write(f"\r{line}  {rate / 1e6:6.1f} MB/s")
        if final:
            self.out.write("\n")
        self.out.flush()


def _connection(url: urllib.parse.SplitResult, timeout: float, cafile: str | None) -> http.client.HTTPConnection:
    host = url.hostname or ""
    is_pilot = is_virtual_host(host)
    if url.scheme == "https":
        import pilotsock.ssl as pilot_ssl

        context = pilot_ssl.create_default_context(cafile=cafile)
        if is_pilot:
            return PilotHTTPSConnection(host, url.port, timeout=timeout, context=context)
        return http.client.HTTPSConnection(host, url.port, timeout=timeout, context=context)
    if url.scheme != "http":
        raise ValueError(f"unsupported URL scheme {url.scheme!r} (http or https)")
    if is_pilot:
        return PilotHTTPConnection(host, url.port, timeout=timeout)
    return http.client.HTTPConnection(host, url.port, timeout=timeout)


def fetch(url: str, out: IO[bytes], *, timeout: float = 30.0, cafile: str | None = None,
          progress: IO[str] | None = None) -> tuple[int, int]:
    """GET ``url`` into ``out``; returns (status, body bytes). Raises OSError/HTTPException."""
    for _ in range(MAX_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(url)
        connection = _connection(parts, timeout, cafile)
        try:
            target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
            connection.request("GET", target, headers={"User-Agent": "pilotsock.http"})
            reply = connection.getresponse()
            location = reply.getheader("Location")
            if reply.status in (301, 302, 303, 307, 308) and location:
                url = urllib.parse.urljoin(url, location)
                continue
            length = reply.getheader("Content-Length")
            bar = Progress(progress, int(length) if length and length.isdigit() else None) if progress else None
            received = 0
            while chunk := reply.read(CHUNK_BYTES):
                out.write(chunk)
                received += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.update(0, final=True)
            return reply.status, received
        finally:
            connection.close()
    raise http.client.HTTPException(f"more than {MAX_REDIRECTS} redirects")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m pilotsock.http get",
                                     description="Fetch a URL (Pilot or ordinary) to stdout or a file.")
    parser.add_argument("url")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the body here (default: stdout)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per connect/read (default 30)")
    parser.add_argument("--cafile", help="CA certificates for https (default: the system's)")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--progress", action="store_true", help="always draw the progress bar on stderr")
    shown.add_argument("-q", "--quiet", action="store_true", help="never draw it")
    args = parser.parse_args(argv)
    draw = not args.quiet and (args.progress or (args.output is not None and sys.stderr.isatty()))
    target: Any = open(args.output, "wb") if args.output else contextlib.nullcontext(sys.stdout.buffer)  # noqa: SIM115
    with target as out:
        try:
            status, _ = fetch(args.url, out, timeout=args.timeout, cafile=args.cafile,
                              progress=sys.stderr if draw else None)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            print(f"pilotsock.http get: {args.url}: {exc}", file=sys.stderr)
            return 1
        out.flush()
    if status >= 400:
        print(f"pilotsock.http get: {args.url}: HTTP {status}", file=sys.stderr)
        return 22  # like curl --fail
    return 0
