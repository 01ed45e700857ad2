"""The stdlib is the specification: each scenario runs on kernel TCP/UDP loopback and on AF_PILOT
through a real daemon, and both runs must end the same way (same result, or the same exception
class, errno and, for timeouts, message)."""

from __future__ import annotations

import socket as kernel
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import pilotsock.socket as psocket
from pilotsock.testing.processes import DaemonProcess

pytestmark = pytest.mark.timeout(60)

STREAM, DGRAM = kernel.SOCK_STREAM, kernel.SOCK_DGRAM


class Env:
    """One side of the comparison: a family, a wildcard bind address and tracked sockets."""

    def __init__(self, family: int, host: str, wildcard: str) -> None:
        self.family = family
        self.host = host
        self.wildcard = wildcard
        self._sockets: list[kernel.socket] = []

    def socket(self, kind: int = STREAM) -> psocket.socket:
        sock = psocket.socket(self.family, kind)
        sock.settimeout(5)
        self._sockets.append(sock)
        return sock

    def track(self, sock: Any) -> Any:
        self._sockets.append(sock)
        return sock

    def listener(self, backlog: int = 8) -> tuple[psocket.socket, tuple[str, int]]:
        sock = self.socket()
        sock.bind((self.wildcard, 0))
        sock.listen(backlog)
        return sock, (self.host, sock.getsockname()[1])

    def pair(self) -> tuple[psocket.socket, psocket.socket]:
        server, address = self.listener()
        client = self.socket()
        client.connect(address)
        conn, _ = server.accept()
        conn.settimeout(5)
        self.track(conn)
        server.close()
        return client, conn

    def free_address(self, kind: int = STREAM) -> tuple[str, int]:
        """An address nobody listens on (bound once, then closed)."""
        probe = self.socket(kind)
        probe.bind((self.wildcard, 0))
        port = probe.getsockname()[1]
        probe.close()
        return self.host, port

    def datagram(self) -> tuple[psocket.socket, tuple[str, int]]:
        sock = self.socket(DGRAM)
        sock.bind((self.wildcard, 0))
        return sock, (self.host, sock.getsockname()[1])

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()


def outcome(scenario: Callable[[Env], Any], env: Env) -> tuple[Any, ...]:
    try:
        return ("returned", scenario(env))
    except OSError as exc:
        detail = str(exc) if isinstance(exc, TimeoutError) else None
        return (type(exc).__name__, exc.errno, detail)
    except (ValueError, TypeError, OverflowError) as exc:
        return (type(exc).__name__,)


def wait_until(predicate: Callable[[], bool], seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)


def read_to_end(sock: Any) -> tuple[bytes, str]:
    """Everything until the end of the stream, and how it ended: "eof" or "reset"."""
    received = b""
    try:
        while chunk := sock.recv(100):
            received += chunk
    except ConnectionResetError:
        return received, "reset"
    return received, "eof"


LINGER_ZERO = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # struct linger {on, 0 s}: close with a reset

SCENARIOS: dict[str, Callable[[Env], Any]] = {}


def scenario(fn: Callable[[Env], Any]) -> Callable[[Env], Any]:
    SCENARIOS[fn.__name__] = fn
    return fn


# -- connect -------------------------------------------------------------------------------------

@scenario
def connect_refused(env: Env) -> Any:
    env.socket().connect(env.free_address())


@scenario
def connect_ex_refused(env: Env) -> Any:
    return env.socket().connect_ex(env.free_address())


@scenario
def create_connection_refused(env: Env) -> Any:
    env.track(psocket.create_connection(env.free_address(), timeout=5))


@scenario
def connect_after_listener_closed(env: Env) -> Any:
    server, address = env.listener()
    server.close()
    env.socket().connect(address)


@scenario
def connect_twice(env: Env) -> Any:
    client, _ = env.pair()
    client.connect(client.getpeername())


@scenario
def connect_port_out_of_range(env: Env) -> Any:
    env.socket().connect((env.host, 70000))


@scenario
def connect_port_not_int(env: Env) -> Any:
    env.socket().connect((env.host, "80"))


@scenario
def connect_on_listener(env: Env) -> Any:
    server, address = env.listener()
    server.connect(address)


@scenario
def connect_ex_twice(env: Env) -> Any:
    client, _ = env.pair()
    return client.connect_ex(client.getpeername())


@scenario
def connect_twice_blocking(env: Env) -> Any:
    client, _ = env.pair()
    client.settimeout(None)
    client.connect(client.getpeername())


@scenario
def connect_with_timeout_to_other_address(env: Env) -> Any:
    client, _ = env.pair()
    _, other = env.listener()
    client.connect(other)


@scenario
def send_and_receive(env: Env) -> Any:
    client, conn = env.pair()
    return client.send(b"x"), conn.recv(1)


# -- bind / listen / accept ----------------------------------------------------------------------

@scenario
def bind_twice(env: Env) -> Any:
    sock = env.socket()
    sock.bind((env.wildcard, 0))
    sock.bind((env.wildcard, 0))


@scenario
def bind_port_of_listener(env: Env) -> Any:
    _, address = env.listener()
    env.socket().bind((env.wildcard, address[1]))


@scenario
def bind_port_of_listener_reuseaddr(env: Env) -> Any:
    server = env.socket()
    server.setsockopt(kernel.SOL_SOCKET, kernel.SO_REUSEADDR, 1)
    server.bind((env.wildcard, 0))
    server.listen()
    other = env.socket()
    other.setsockopt(kernel.SOL_SOCKET, kernel.SO_REUSEADDR, 1)
    other.bind((env.wildcard, server.getsockname()[1]))


@scenario
def rebind_after_listener_closed(env: Env) -> Any:
    server, address = env.listener()
    client = env.socket()
    client.connect(address)
    conn, _ = server.accept()
    conn.close()  # the accepted side closes first: its port is in use until the close finishes
    server.close()
    again = env.socket()
    again.setsockopt(kernel.SOL_SOCKET, kernel.SO_REUSEADDR, 1)
    again.bind((env.wildcard, address[1]))
    again.listen()
    return again.getsockname()[1] == address[1]


@scenario
def rebind_after_reuseaddr_listener_closed(env: Env) -> Any:
    server = env.socket()
    server.setsockopt(kernel.SOL_SOCKET, kernel.SO_REUSEADDR, 1)
    server.bind((env.wildcard, 0))
    server.listen()
    address = (env.host, server.getsockname()[1])
    client = env.socket()
    client.connect(address)
    conn, _ = server.accept()
    env.track(conn)
    server.close()  # the accepted connection still uses the port, but it allows reuse
    again = env.socket()
    again.setsockopt(kernel.SOL_SOCKET, kernel.SO_REUSEADDR, 1)
    again.bind((env.wildcard, address[1]))
    again.listen()
    again.settimeout(2)
    env.socket().connect(address)
    accepted, _ = again.accept()
    env.track(accepted)
    return conn.getsockname()[1] == accepted.getsockname()[1]


@scenario
def bind_port_out_of_range(env: Env) -> Any:
    env.socket().bind((env.wildcard, 65536))


@scenario
def bind_negative_port(env: Env) -> Any:
    env.socket().bind((env.wildcard, -1))


@scenario
def bind_not_a_tuple(env: Env) -> Any:
    env.socket().bind(env.wildcard)


@scenario
def bind_port_zero_is_ephemeral(env: Env) -> Any:
    sock = env.socket()
    sock.bind((env.wildcard, 0))
    return sock.getsockname()[1] > 0


@scenario
def listen_without_bind_picks_a_port(env: Env) -> Any:
    sock = env.socket()
    sock.listen()
    return sock.getsockname()[1] > 0


@scenario
def accept_without_listen(env: Env) -> Any:
    sock = env.socket()
    sock.bind((env.wildcard, 0))
    sock.accept()


@scenario
def accept_timeout(env: Env) -> Any:
    server, _ = env.listener()
    server.settimeout(0.05)
    server.accept()


@scenario
def accept_nonblocking(env: Env) -> Any:
    server, _ = env.listener()
    server.setblocking(False)
    server.accept()


@scenario
def accept_inherits_no_timeout(env: Env) -> Any:
    server, address = env.listener()
    env.socket().connect(address)
    server.settimeout(2)
    conn, _ = server.accept()
    env.track(conn)
    return conn.gettimeout(), conn.getblocking()


@scenario
def accepted_peer_matches_client(env: Env) -> Any:
    server, address = env.listener()
    client = env.socket()
    client.connect(address)
    conn, peer = server.accept()
    env.track(conn)
    return peer == client.getsockname() == conn.getpeername(), conn.getsockname() == client.getpeername()


@scenario
def listener_closed_wakes_nothing_and_refuses(env: Env) -> Any:
    server, address = env.listener()
    server.close()
    return env.socket().connect_ex(address)


# -- timeouts and non-blocking -------------------------------------------------------------------

@scenario
def recv_timeout(env: Env) -> Any:
    client, _ = env.pair()
    client.settimeout(0.05)
    client.recv(1)


@scenario
def recv_into_timeout(env: Env) -> Any:
    client, _ = env.pair()
    client.settimeout(0.05)
    client.recv_into(bytearray(4))


@scenario
def recv_nonblocking(env: Env) -> Any:
    client, _ = env.pair()
    client.setblocking(False)
    client.recv(1)


@scenario
def settimeout_zero_is_nonblocking(env: Env) -> Any:
    client, _ = env.pair()
    client.settimeout(0.0)
    try:
        client.recv(1)
    except BlockingIOError as exc:
        return client.getblocking(), client.gettimeout(), exc.errno


@scenario
def settimeout_negative(env: Env) -> Any:
    env.socket().settimeout(-1)


@scenario
def default_timeout_applies(env: Env) -> Any:
    previous = psocket.getdefaulttimeout()
    psocket.setdefaulttimeout(0.05)
    try:
        sock = psocket.socket(env.family, STREAM)
        env.track(sock)
        return sock.gettimeout()
    finally:
        psocket.setdefaulttimeout(previous)


@scenario
def sendall_timeout_when_peer_does_not_read(env: Env) -> Any:
    client, _ = env.pair()
    client.settimeout(0.3)
    chunk = bytes(1 << 20)
    for _ in range(200):  # bounded: far more than every buffer on the path
        client.sendall(chunk)


# -- data, EOF, half-close ---------------------------------------------------------------------

@scenario
def recv_after_peer_close_is_eof(env: Env) -> Any:
    client, conn = env.pair()
    conn.sendall(b"last")
    conn.close()
    return client.recv(10), client.recv(10)


@scenario
def half_close_then_reply(env: Env) -> Any:
    client, conn = env.pair()
    client.sendall(b"request")
    client.shutdown(kernel.SHUT_WR)
    received = b""
    while chunk := conn.recv(100):
        received += chunk
    conn.sendall(b"reply")
    conn.close()
    return received, client.recv(100), client.recv(100)


@scenario
def send_after_own_shutdown_wr(env: Env) -> Any:
    client, _ = env.pair()
    client.shutdown(kernel.SHUT_WR)
    client.send(b"x")


@scenario
def recv_after_own_shutdown_rd(env: Env) -> Any:
    client, _ = env.pair()
    client.shutdown(kernel.SHUT_RD)
    return client.recv(10)


@scenario
def shutdown_wakes_blocked_reader(env: Env) -> Any:
    client, _ = env.pair()
    result: list[Any] = []
    reader = threading.Thread(target=lambda: result.append(client.recv(10)))
    reader.start()
    time.sleep(0.05)
    client.shutdown(kernel.SHUT_RDWR)
    reader.join(5)
    return result


@scenario
def recv_zero_bytes(env: Env) -> Any:
    client, _ = env.pair()
    return client.recv(0)


@scenario
def recv_negative(env: Env) -> Any:
    client, _ = env.pair()
    client.recv(-1)


@scenario
def recv_into_too_small(env: Env) -> Any:
    client, _ = env.pair()
    client.recv_into(bytearray(2), 10)


@scenario
def recvfrom_on_stream(env: Env) -> Any:
    client, conn = env.pair()
    conn.sendall(b"abc")
    return client.recvfrom(10)


@scenario
def sendto_on_connected_stream(env: Env) -> Any:
    client, _ = env.pair()
    client.sendto(b"x", client.getpeername())


@scenario
def sendmsg_recvmsg_into_on_stream(env: Env) -> Any:
    client, conn = env.pair()
    sent = client.sendmsg([b"scatter ", memoryview(b"gather")])
    first, second = bytearray(8), bytearray(16)
    count = 0
    while count < sent:
        count += conn.recvmsg_into([memoryview(first)[count:] if count < 8 else memoryview(second)[count - 8:]])[0]
    return sent, bytes(first), bytes(second[:6])


@scenario
def repr_shows_state(env: Env) -> Any:
    client, _ = env.pair()
    text = repr(client)
    client.close()
    return "laddr=" in text, "raddr=" in text, repr(client).startswith("<") and "[closed]" in repr(client)


@scenario
def makefile_lines_and_eof(env: Env) -> Any:
    client, conn = env.pair()
    with conn.makefile("wb") as out:
        out.write(b"one\ntwo\n")
    conn.close()
    with client.makefile("rb") as reader:
        return reader.readline(), reader.readline(), reader.readline()


@scenario
def peer_reset_by_unread_close(env: Env) -> Any:
    client, conn = env.pair()
    client.sendall(b"never read")
    time.sleep(0.1)
    conn.close()  # closing with unread data resets the connection
    client.settimeout(3)
    return client.recv(10)


@scenario
def peer_reset_recv_into(env: Env) -> Any:
    client, conn = env.pair()
    client.sendall(b"never read")
    time.sleep(0.1)
    conn.close()
    return client.recv_into(bytearray(10))


@scenario
def peer_reset_by_linger_zero(env: Env) -> Any:
    client, conn = env.pair()
    conn.setsockopt(kernel.SOL_SOCKET, kernel.SO_LINGER, LINGER_ZERO)
    conn.close()
    return client.recv(10)


@scenario
def linger_zero_after_send_delivers_then_resets(env: Env) -> Any:
    client, conn = env.pair()
    client.setsockopt(kernel.SOL_SOCKET, kernel.SO_LINGER, LINGER_ZERO)
    client.sendall(b"last words")
    client.close()
    time.sleep(0.1)
    return read_to_end(conn)


@scenario
def getpeername_after_reset(env: Env) -> Any:
    client, conn = env.pair()
    client.setsockopt(kernel.SOL_SOCKET, kernel.SO_LINGER, LINGER_ZERO)
    client.close()
    time.sleep(0.1)
    conn.getpeername()


@scenario
def linger_zero_with_makefile_resets_on_last_close(env: Env) -> Any:
    client, conn = env.pair()
    conn.setsockopt(kernel.SOL_SOCKET, kernel.SO_LINGER, LINGER_ZERO)
    writer = conn.makefile("wb")
    conn.close()  # the file still holds the socket open
    writer.write(b"buffered")
    writer.flush()
    first = client.recv(100)
    writer.close()
    return first, client.recv(100)


@scenario
def peer_reset_then_eof(env: Env) -> Any:
    client, conn = env.pair()
    client.sendall(b"never read")
    time.sleep(0.1)
    conn.close()
    try:
        client.recv(10)
    except ConnectionResetError:
        pass
    return client.recv(10)


@scenario
def peer_reset_recvmsg(env: Env) -> Any:
    client, conn = env.pair()
    client.sendall(b"never read")
    time.sleep(0.1)
    conn.close()
    return client.recvmsg(10)[0]


@scenario
def peer_reset_makefile_read(env: Env) -> Any:
    client, conn = env.pair()
    client.sendall(b"never read")
    time.sleep(0.1)
    conn.close()
    with client.makefile("rb") as reader:
        return reader.read()


@scenario
def peer_reset_keeps_data_sent_before(env: Env) -> Any:
    client, conn = env.pair()
    conn.sendall(b"sent first")
    client.sendall(b"never read")
    time.sleep(0.1)
    conn.close()
    return read_to_end(client)


@scenario
def eof_after_own_shutdown_is_not_reset(env: Env) -> Any:
    client, conn = env.pair()
    client.shutdown(kernel.SHUT_WR)
    assert conn.recv(10) == b""
    conn.close()
    time.sleep(0.1)
    return client.recv(10)


@scenario
def send_after_peer_closed_eventually_fails(env: Env) -> Any:
    client, conn = env.pair()
    conn.close()
    time.sleep(0.05)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        client.send(b"x")
        time.sleep(0.02)
    return "never failed"


# -- after close ---------------------------------------------------------------------------------

@scenario
def recv_after_close(env: Env) -> Any:
    client, _ = env.pair()
    client.close()
    client.recv(1)


@scenario
def send_after_close(env: Env) -> Any:
    client, _ = env.pair()
    client.close()
    client.send(b"x")


@scenario
def getsockname_after_close(env: Env) -> Any:
    client, _ = env.pair()
    client.close()
    client.getsockname()


@scenario
def getpeername_after_close(env: Env) -> Any:
    client, _ = env.pair()
    client.close()
    client.getpeername()


@scenario
def close_twice_and_fileno(env: Env) -> Any:
    client, _ = env.pair()
    client.close()
    client.close()
    return client.fileno()


@scenario
def shutdown_after_close(env: Env) -> Any:
    client, _ = env.pair()
    client.close()
    client.shutdown(kernel.SHUT_RDWR)


@scenario
def context_manager_closes(env: Env) -> Any:
    with env.socket() as sock:
        pass
    return sock.fileno(), "[closed]" in repr(sock)


@scenario
def makefile_keeps_socket_open_until_file_closed(env: Env) -> Any:
    client, conn = env.pair()
    reader = client.makefile("rb")
    client.close()
    conn.sendall(b"still\n")
    line = reader.readline()
    reader.close()
    return line, client.fileno()


# -- unconnected ---------------------------------------------------------------------------------

@scenario
def getpeername_unconnected(env: Env) -> Any:
    env.socket().getpeername()


@scenario
def getsockname_unbound_port(env: Env) -> Any:
    return env.socket().getsockname()[1]


@scenario
def shutdown_unconnected(env: Env) -> Any:
    env.socket().shutdown(kernel.SHUT_RDWR)


@scenario
def recv_unconnected(env: Env) -> Any:
    env.socket().recv(1)


@scenario
def send_unconnected(env: Env) -> Any:
    env.socket().send(b"x")


@scenario
def recv_on_listener(env: Env) -> Any:
    server, _ = env.listener()
    server.settimeout(None)  # with a timeout CPython would first wait for readability
    server.recv(1)


@scenario
def accept_after_listener_shutdown(env: Env) -> Any:
    server, _ = env.listener()
    server.shutdown(kernel.SHUT_RDWR)
    server.accept()


@scenario
def listener_shutdown_wakes_blocked_accept(env: Env) -> Any:
    server, _ = env.listener()
    errors: list[Any] = []

    def accept() -> None:
        try:
            server.accept()
        except OSError as exc:
            errors.append((type(exc).__name__, exc.errno))

    thread = threading.Thread(target=accept)
    thread.start()
    time.sleep(0.05)
    server.shutdown(kernel.SHUT_RDWR)
    thread.join(5)
    return errors


@scenario
def sendall_unconnected(env: Env) -> Any:
    env.socket().sendall(b"x")


@scenario
def recv_into_unconnected(env: Env) -> Any:
    env.socket().recv_into(bytearray(3))


@scenario
def sendto_unconnected_stream(env: Env) -> Any:
    env.socket().sendto(b"x", env.free_address())


@scenario
def recvmsg_on_bound_unconnected(env: Env) -> Any:
    sock = env.socket()
    sock.bind((env.wildcard, 0))
    sock.recvmsg(3)


@scenario
def send_on_bound_unconnected(env: Env) -> Any:
    sock = env.socket()
    sock.bind((env.wildcard, 0))
    sock.send(b"x")


@scenario
def recv_on_bound_unconnected(env: Env) -> Any:
    sock = env.socket()
    sock.bind((env.wildcard, 0))
    sock.recv(1)


@scenario
def getpeername_on_listener(env: Env) -> Any:
    server, _ = env.listener()
    server.getpeername()


# -- options -------------------------------------------------------------------------------------

@scenario
def options_roundtrip(env: Env) -> Any:
    client, _ = env.pair()
    client.setsockopt(kernel.IPPROTO_TCP, kernel.TCP_NODELAY, 1)
    client.setsockopt(kernel.SOL_SOCKET, kernel.SO_KEEPALIVE, 1)
    return (bool(client.getsockopt(kernel.IPPROTO_TCP, kernel.TCP_NODELAY)),
            client.getsockopt(kernel.SOL_SOCKET, kernel.SO_KEEPALIVE),
            client.getsockopt(kernel.SOL_SOCKET, kernel.SO_TYPE),
            client.getsockopt(kernel.SOL_SOCKET, kernel.SO_ERROR))


@scenario
def nodelay_before_connect(env: Env) -> Any:
    _, address = env.listener()
    client = env.socket()
    client.setsockopt(kernel.IPPROTO_TCP, kernel.TCP_NODELAY, 1)
    client.connect(address)
    return bool(client.getsockopt(kernel.IPPROTO_TCP, kernel.TCP_NODELAY))


@scenario
def options_set_before_connect_survive(env: Env) -> Any:
    _, address = env.listener()
    client = env.socket()
    client.setsockopt(kernel.SOL_SOCKET, kernel.SO_KEEPALIVE, 1)
    client.setsockopt(kernel.SOL_SOCKET, kernel.SO_LINGER, b"\x01\x00\x00\x00\x05\x00\x00\x00")
    client.connect(address)
    return (client.getsockopt(kernel.SOL_SOCKET, kernel.SO_KEEPALIVE),
            client.getsockopt(kernel.SOL_SOCKET, kernel.SO_LINGER, 8))


@scenario
def reuseaddr_set_before_bind_survives(env: Env) -> Any:
    server = env.socket()
    server.setsockopt(kernel.SOL_SOCKET, kernel.SO_REUSEADDR, 1)
    server.bind((env.wildcard, 0))
    server.listen()
    return server.getsockopt(kernel.SOL_SOCKET, kernel.SO_REUSEADDR)


@scenario
def nodelay_after_connect(env: Env) -> Any:
    client, conn = env.pair()
    client.setsockopt(kernel.IPPROTO_TCP, kernel.TCP_NODELAY, 1)
    conn.setsockopt(kernel.IPPROTO_TCP, kernel.TCP_NODELAY, 1)
    for _ in range(20):
        client.send(b"s")
    received = b""
    while len(received) < 20:
        received += conn.recv(20)
    client.setsockopt(kernel.IPPROTO_TCP, kernel.TCP_NODELAY, 0)
    return received, bool(client.getsockopt(kernel.IPPROTO_TCP, kernel.TCP_NODELAY)), bool(
        conn.getsockopt(kernel.IPPROTO_TCP, kernel.TCP_NODELAY))


@scenario
def reuseaddr_roundtrip(env: Env) -> Any:
    sock = env.socket()
    sock.setsockopt(kernel.SOL_SOCKET, kernel.SO_REUSEADDR, 1)
    return sock.getsockopt(kernel.SOL_SOCKET, kernel.SO_REUSEADDR)


@scenario
def type_and_blocking(env: Env) -> Any:
    sock = psocket.socket(env.family, STREAM | kernel.SOCK_NONBLOCK)
    env.track(sock)
    return sock.type, sock.getblocking(), sock.gettimeout()


# -- datagrams -----------------------------------------------------------------------------------

@scenario
def dgram_roundtrip(env: Env) -> Any:
    a, a_address = env.datagram()
    b, b_address = env.datagram()
    a.sendto(b"ping", b_address)
    data, source = b.recvfrom(100)
    b.sendto(b"pong", source)
    return data, source == a_address, a.recvfrom(100)[0]


@scenario
def dgram_recvfrom_timeout(env: Env) -> Any:
    sock, _ = env.datagram()
    sock.settimeout(0.05)
    sock.recvfrom(10)


@scenario
def dgram_recvfrom_nonblocking(env: Env) -> Any:
    sock, _ = env.datagram()
    sock.setblocking(False)
    sock.recvfrom(10)


@scenario
def dgram_recv_unbound_times_out(env: Env) -> Any:
    sock = env.socket(DGRAM)
    sock.settimeout(0.05)
    sock.recvfrom(10)


@scenario
def dgram_too_big(env: Env) -> Any:
    sock, address = env.datagram()
    sock.sendto(bytes(70000), address)


@scenario
def dgram_send_unconnected(env: Env) -> Any:
    env.socket(DGRAM).send(b"x")


@scenario
def dgram_connected_filters_sources(env: Env) -> Any:
    a, a_address = env.datagram()
    b, b_address = env.datagram()
    c, _ = env.datagram()
    a.connect(b_address)
    c.sendto(b"stranger", a_address)
    b.sendto(b"peer", a_address)
    return a.recv(100), a.getpeername() == b_address


@scenario
def dgram_truncates_to_bufsize(env: Env) -> Any:
    a, _ = env.datagram()
    b, b_address = env.datagram()
    a.sendto(b"0123456789", b_address)
    a.sendto(b"next", b_address)
    return b.recvfrom(4)[0], b.recvfrom(100)[0]


@scenario
def dgram_recvfrom_into(env: Env) -> Any:
    a, _ = env.datagram()
    b, b_address = env.datagram()
    a.sendto(b"payload", b_address)
    buffer = bytearray(16)
    count, _ = b.recvfrom_into(buffer)
    return bytes(buffer[:count])


@scenario
def dgram_getpeername_unconnected(env: Env) -> Any:
    sock, _ = env.datagram()
    sock.getpeername()


@scenario
def dgram_sendmsg_recvmsg(env: Env) -> Any:
    a, _ = env.datagram()
    b, b_address = env.datagram()
    a.sendmsg([b"two ", b"parts"], [], 0, b_address)
    data, ancillary, _, _ = b.recvmsg(100)
    return data, ancillary


@scenario
def dgram_recvmsg_into_scatters(env: Env) -> Any:
    a, _ = env.datagram()
    b, b_address = env.datagram()
    a.sendto(b"0123456789", b_address)
    head, tail = bytearray(4), bytearray(10)
    count = b.recvmsg_into([head, tail])[0]
    return count, bytes(head), bytes(tail[:6])


@scenario
def dgram_recvmsg_reports_truncation(env: Env) -> Any:
    a, _ = env.datagram()
    b, b_address = env.datagram()
    a.sendto(b"0123456789", b_address)
    a.sendto(b"fits", b_address)
    a.sendto(b"0123456789", b_address)
    first, _, first_flags, _ = b.recvmsg(4)
    second, _, second_flags, _ = b.recvmsg(100)
    buffer = bytearray(3)
    count, _, third_flags, _ = b.recvmsg_into([buffer])
    return (first, first_flags & kernel.MSG_TRUNC, second, second_flags & kernel.MSG_TRUNC,
            count, bytes(buffer), third_flags & kernel.MSG_TRUNC)


@scenario
def dgram_msg_calls_reject_bad_arguments(env: Env) -> Any:
    sock, address = env.datagram()
    errors = []
    for call in (lambda: sock.recvmsg(-1), lambda: sock.recvmsg(10, -1), lambda: sock.recvmsg(object()),
                 lambda: sock.recvmsg_into([b"read-only"]), lambda: sock.recvmsg_into(object()),
                 lambda: sock.sendmsg(object(), [], 0, address), lambda: sock.sendmsg([b"x"], [(0, 0)], 0, address),
                 lambda: sock.sendmsg([b"x"], object(), 0, address), lambda: sock.sendmsg([object()], [], 0, address)):
        try:
            call()
        except (TypeError, ValueError) as exc:
            errors.append((type(exc).__name__, str(exc)))
    sock.sendmsg(iter([b"still ", b"works"]), iter([]), 0, address)
    return errors, sock.recv(100)


@scenario
def dgram_shutdown_unconnected(env: Env) -> Any:
    sock, _ = env.datagram()
    sock.shutdown(kernel.SHUT_RDWR)


@scenario
def dgram_listen(env: Env) -> Any:
    sock, _ = env.datagram()
    sock.listen()


@scenario
def dgram_tcp_option(env: Env) -> Any:
    env.socket(DGRAM).setsockopt(kernel.IPPROTO_TCP, kernel.TCP_NODELAY, 1)


# -- the test ------------------------------------------------------------------------------------

def test_there_are_at_least_forty_scenarios() -> None:
    assert len(SCENARIOS) >= 40


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_matches_kernel(name: str, node: DaemonProcess) -> None:
    fn = SCENARIOS[name]
    envs = {"kernel": Env(kernel.AF_INET, "127.0.0.1", "127.0.0.1"),
            "pilot": Env(psocket.AF_PILOT, node.address, "")}
    results = {}
    for label, env in envs.items():
        try:
            results[label] = outcome(fn, env)
        finally:
            env.close()
    assert results["pilot"] == results["kernel"], name
