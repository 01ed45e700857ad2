# SPDX-License-Identifier: Apache-2.0
"""HTTP over Pilot with the stdlib: a server (``python -m pilotsock.http``) and a client connection.

Both are the unchanged stdlib ``http.server`` / ``http.client`` classes on ``pilotsock.socket``.
"""

from pilotsock.http.client import PilotHTTPConnection
from pilotsock.http.server import PilotHTTPServer, serve

__all__ = ["PilotHTTPConnection", "PilotHTTPServer", "serve"]
