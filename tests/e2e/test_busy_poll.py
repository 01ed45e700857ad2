"""The daemon's polling selector on a real socketpair: it returns what is ready, honours its
timeout, keeps polling only for its window after activity, and then blocks again."""

from __future__ import annotations

import selectors
import socket
import time

import pytest

from pilotsock.daemon.busy_poll import BusyPollSelector

pytestmark = pytest.mark.timeout(30)


def test_ready_events_timeouts_and_the_window() -> None:
    a, b = socket.socketpair()
    with a, b, BusyPollSelector(window=0.05) as selector:
        selector.register(b, selectors.EVENT_READ)
        assert selector.select(0) == []
        started = time.monotonic()
        assert selector.select(0.02) == []  # nothing ready: blocks for its timeout, no longer
        assert 0.015 <= time.monotonic() - started < 1.0
        a.send(b"x")
        ready = selector.select(1.0)
        assert [key.fileobj for key, _ in ready] == [b]
        b.recv(10)
        # Within the window after activity it polls; a timeout still bounds the call.
        started = time.monotonic()
        assert selector.select(0.01) == []
        assert time.monotonic() - started < 1.0
        a.send(b"y")
        assert [key.fileobj for key, _ in selector.select(None)] == [b]


def test_zero_window_is_the_plain_selector() -> None:
    a, b = socket.socketpair()
    with a, b, BusyPollSelector(window=0) as selector:
        selector.register(b, selectors.EVENT_READ)
        a.send(b"z")
        assert len(selector.select(None)) == 1
