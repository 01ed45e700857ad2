# SPDX-License-Identifier: Apache-2.0
"""The AF_UNIX stream pair an application and its daemon share (``socket-design.md`` §1).

Where it sits: ring 3, used by both ends (the client socket class and the daemon's channels):
what one end can learn from the kernel about the other.
"""

from __future__ import annotations

import select
import socket


def both_directions_shut(end: socket.socket | int) -> bool:
    """True once both directions of this end are shut (POLLHUP): the other end was closed
    completely (a close shuts both), or each side shut its writing half."""
    poller = select.poll()
    poller.register(end, select.POLLOUT)
    return any(events & select.POLLHUP for _, events in poller.poll(0))
