"""Non-blocking connect over AF_PILOT (socket-design.md G6): EINPROGRESS, the fd turns writable
exactly when the virtual handshake ends, SO_ERROR tells the outcome, and asyncio's unmodified
selector loop connects, exchanges data and sees refusals like kernel TCP."""

from __future__ import annotations

import asyncio
import errno
import select
import socket
import threading
import time

import pytest

import pilotsock.socket as psocket
from pilotsock.errors import ErrorCode
from pilotsock.wire.local_api import encode_frame, error_reply

from .conftest import DaemonFactory, use_daemon

pytestmark = pytest.mark.timeout(60)


def _echo_server(port: int) -> tuple[psocket.socket, threading.Thread]:
    server = psocket.socket(psocket.AF_PILOT, psocket.SOCK_STREAM)
    server.bind(("", port))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


def test_einprogress_then_writable_then_so_error(daemons: DaemonFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    node_a, node_b = daemons("a"), daemons("b")
    use_daemon(monkeypatch, node_b)
    server, _ = _echo_server(6000)
    use_daemon(monkeypatch, node_a)
    try:
        for family, address in ((socket.AF_INET, None), (psocket.AF_PILOT, (node_b.address, 6000))):
            if family == socket.AF_INET:  # the kernel's behaviour, side by side
                listener = socket.create_server(("127.0.0.1", 0))
                address = listener.getsockname()
            sock = psocket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            started = time.monotonic()
            with pytest.raises(BlockingIOError) as info:
                sock.connect(address)
            assert info.value.errno == errno.EINPROGRESS
            assert time.monotonic() - started < 1.0  # it did not wait for the handshake
            _, writable, _ = select.select([], [sock], [], 10)
            assert writable == [sock]
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            assert sock.getpeername()[1] == address[1]
            sock.connect(address)  # the first connect() after completion reports success...
            with pytest.raises(OSError) as again:
                sock.connect(address)  # ...later ones EISCONN
            assert again.value.errno == errno.EISCONN
            sock.setblocking(True)
            if family == psocket.AF_PILOT:
                sock.sendall(b"x" * 200_000)  # the send buffer is back to normal size
                received = b""
                while len(received) < 200_000:
                    received += sock.recv(65536)
                assert received == b"x" * 200_000
            sock.close()
            if family == socket.AF_INET:
                listener.close()
    finally:
        server.close()


def test_refused_and_unreachable_come_back_through_so_error(daemons: DaemonFactory,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    node_a, node_b = daemons("a"), daemons("b")
    use_daemon(monkeypatch, node_a)
    sock = psocket.socket(psocket.AF_PILOT, socket.SOCK_STREAM)
    sock.setblocking(False)
    started = sock.connect_ex((node_b.address, 6001))
    assert started in (errno.EINPROGRESS, errno.ECONNREFUSED)
    if started == errno.EINPROGRESS:  # else the refusal beat the guard and connect() said so
        select.select([], [sock], [], 10)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED
    with pytest.raises(OSError) as info:
        sock.getpeername()
    assert info.value.errno == errno.ENOTCONN
    sock.close()


def test_asyncio_sock_connect_and_open_connection(daemons: DaemonFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    node_a, node_b = daemons("a"), daemons("b")
    use_daemon(monkeypatch, node_b)
    server, _ = _echo_server(6002)
    use_daemon(monkeypatch, node_a)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        sock = psocket.socket(psocket.AF_PILOT, socket.SOCK_STREAM)
        sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(sock, (node_b.address, 6002)), 10)
        await loop.sock_sendall(sock, b"hello")
        assert await asyncio.wait_for(loop.sock_recv(sock, 100), 10) == b"hello"
        sock.close()
        sock = psocket.socket(psocket.AF_PILOT, socket.SOCK_STREAM)
        sock.setblocking(False)
        reader, writer = await asyncio.wait_for(asyncio.open_connection(sock=await _connected(sock)), 10)
        writer.write(b"line\n")
        assert await asyncio.wait_for(reader.readline(), 10) == b"line\n"
        writer.close()
        await writer.wait_closed()
        refused = psocket.socket(psocket.AF_PILOT, socket.SOCK_STREAM)
        refused.setblocking(False)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(loop.sock_connect(refused, (node_b.address, 6003)), 10)
        refused.close()

    async def _connected(sock: psocket.socket) -> psocket.socket:
        await asyncio.get_running_loop().sock_connect(sock, (node_b.address, 6002))
        return sock

    try:
        asyncio.run(main())
    finally:
        server.close()


def _pending(daemon_end_script: str) -> tuple[psocket.socket, socket.socket]:
    """A virtual socket on one end of a pair whose other end plays the daemon."""
    ours, theirs = socket.socketpair()
    sock = psocket.socket(psocket.AF_PILOT, socket.SOCK_STREAM, fileno=ours.detach())
    sock.setblocking(False)
    if daemon_end_script == "refuse-before-guard":
        theirs.sendall(encode_frame(error_reply(ErrorCode.REFUSED)))
        theirs.close()
    return sock, theirs


@pytest.mark.parametrize("when", ["before", "after"])
def test_refusal_before_or_after_the_guard_is_written(when: str) -> None:
    """Both orders of "daemon fails the dial" and "client writes the guard": the refusal before
    the guard must not read as success (the kernel's SO_ERROR is 0 then)."""
    sock, theirs = _pending("refuse-before-guard" if when == "before" else "")
    try:
        if when == "before":
            with pytest.raises(ConnectionRefusedError):
                sock._start_pending_connect()
            return
        with pytest.raises(BlockingIOError):
            sock._start_pending_connect()
        assert select.select([], [sock], [], 0)[1] == []  # the unconsumed guard holds it unwritable
        theirs.sendall(encode_frame(error_reply(ErrorCode.REFUSED)))
        theirs.close()  # with the guard unread
        assert select.select([], [sock], [], 5)[1] == [sock]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED
    finally:
        sock.close()
        theirs.close()
