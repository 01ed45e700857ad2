# SPDX-License-Identifier: Apache-2.0
"""``http.client.HTTPConnection`` whose socket is a ``pilotsock.socket`` virtual socket.

Use the URL-safe host spelling (``0-0000-0000-0005.pilot``) so the ``Host`` header and URLs stay
valid; the canonical ``N:NNNN.HHHH.LLLL`` form is accepted too.
"""

from __future__ import annotations

import http.client
from typing import Any

from pilotsock import socket as pilot_socket
from pilotsock.addresses import to_virtual


class PilotHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int | None = None, **kwargs: Any) -> None:
        virtual = to_virtual(host)
        if virtual is not None and ":" in host:
            host = virtual.alias()  # a colon in the host would be taken for IPv6 by http.client
        super().__init__(host, port, **kwargs)

    def connect(self) -> None:
        self.sock = pilot_socket.create_connection((self.host, self.port), self.timeout,
                                                    getattr(self, "source_address", None))
        if self._tunnel_host:  # type: ignore[attr-defined]
            self._tunnel()  # type: ignore[attr-defined]
