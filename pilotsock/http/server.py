# SPDX-License-Identifier: Apache-2.0
"""``http.server`` listening on a Pilot port of this node.

``PilotHTTPServer`` is the stdlib ``ThreadingHTTPServer`` with its listening socket made by
``pilotsock.socket``; handlers (e.g. ``SimpleHTTPRequestHandler``) are used unchanged.
"""

from __future__ import annotations

import http.server
import socketserver
from typing import Any

from pilotsock import socket as pilot_socket
from pilotsock.addresses import Addr


class PilotHTTPServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server bound to ``(virtual address or '', port)`` on this node."""

    address_family = pilot_socket.AF_PILOT
    daemon_threads = True

    def __init__(self, server_address: tuple[str, int], handler: Any, bind_and_activate: bool = True) -> None:
        # TCPServer.__init__ would create the socket with the stdlib module; do it ourselves.
        socketserver.BaseServer.__init__(self, server_address, handler)
        self.socket = pilot_socket.socket(pilot_socket.AF_PILOT, self.socket_type)
        if bind_and_activate:
            try:
                self.server_bind()
                self.server_activate()
            except BaseException:
                self.server_close()
                raise

    def server_bind(self) -> None:
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        host, port = self.server_address[:2]
        # HTTPServer.server_bind would call getfqdn() and reach DNS; the alias is our name.
        self.server_name = Addr.parse(str(host)).alias()
        self.server_port = port

    @property
    def url(self) -> str:
        return f"http://{self.server_name}:{self.server_port}/"


class FileHandler(http.server.SimpleHTTPRequestHandler):
    """The stdlib file handler speaking HTTP/1.1, so clients can keep connections alive."""

    protocol_version = "HTTP/1.1"


def serve(port: int = 8000, directory: str | None = None, bind: str = "", *,
          handler: Any = None, ready: Any = None, protocol: str = "HTTP/1.1") -> None:
    """Serve ``directory`` until interrupted (what ``python -m pilotsock.http`` runs)."""
    import functools

    if handler is None:
        handler_class = type("FileHandler", (FileHandler,), {"protocol_version": protocol})
        handler = functools.partial(handler_class, directory=directory)
    with PilotHTTPServer((bind, port), handler) as server:
        host, bound_port = str(server.server_address[0]), server.server_address[1]
        lines = [f"Serving HTTP on {host} port {bound_port} ({server.url}) ..."]
        hostname = _hostname()
        if hostname:
            lines.append(f"Also reachable as http://{hostname}.pilot:{bound_port}/")
        print("\n".join(lines), flush=True)
        if ready is not None:
            ready(server)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("\nKeyboard interrupt received, exiting.", flush=True)


def _hostname() -> str | None:
    from pilotsock.client.locator import request

    try:
        reply = request({"op": "info"}, autostart=False)
    except OSError:
        return None
    name = reply.get("hostname")
    return name if isinstance(name, str) and name else None
