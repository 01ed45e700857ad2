"""pilotsock.patch: unchanged programs (stdlib servers and clients, requests, urllib3, httpx,
aiohttp client and server) on Pilot,
each run in a child process through ``python -m pilotsock.patch`` with no pilotsock import in its
source; and the patch API itself (idempotent, reversible, kernel sockets untouched)."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
import types
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from pilotsock import patch
from pilotsock.testing.certs import make_certificates
from pilotsock.testing.processes import DaemonProcess

from .conftest import DaemonFactory

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def unpatched() -> Iterator[None]:
    yield
    patch.unpatch_all()


def _patch_in_this_process() -> None:
    """pytest has long imported modules that captured socket objects (e.g. anyio's plugin):
    the too-late warning is right but not what these tests are about."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", patch.PatchedTooLate)
        patch.patch_all()


# -- the API, in this process ------------------------------------------------------------------

def test_patch_all_is_idempotent_and_reversible(unpatched: None) -> None:
    import pilotsock.socket as psocket
    import pilotsock.ssl as pssl

    originals = {name: getattr(socket, name) for name in patch.SOCKET_NAMES}
    ssl_class = ssl.SSLContext.sslsocket_class
    assert not patch.is_patched()
    _patch_in_this_process()
    _patch_in_this_process()
    assert patch.is_patched() and patch.is_patched("socket", "getaddrinfo") and patch.is_patched("ssl")
    assert socket.socket is psocket.socket and socket.getaddrinfo is psocket.getaddrinfo
    assert ssl.SSLContext.sslsocket_class is pssl.SSLSocket
    assert patch.get_original("socket", "socket") is originals["socket"]
    assert patch.get_original("ssl", "sslsocket_class") is ssl_class
    assert socket.create_connection is patch.get_original("socket", "create_connection")  # not replaced
    patch.unpatch_all()
    patch.unpatch_all()
    assert not patch.is_patched()
    assert {name: getattr(socket, name) for name in patch.SOCKET_NAMES} == originals
    assert ssl.SSLContext.sslsocket_class is ssl_class


def test_kernel_sockets_behave_as_before_when_patched(unpatched: None, tmp_path: Path) -> None:
    _patch_in_this_process()
    (tmp_path / "page").write_bytes(b"kernel tcp")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             lambda *a: Quiet(*a, directory=str(tmp_path)))  # type: ignore[misc]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert isinstance(server.socket, patch.get_original("socket", "socket"))
        assert server.socket.family == socket.AF_INET
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/page", timeout=5) as reply:
            assert reply.read() == b"kernel tcp"
        with socket.create_connection(("localhost", port), timeout=5) as sock:
            assert sock.family in (socket.AF_INET, socket.AF_INET6)
        assert socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)[0][4] == ("127.0.0.1", 80)
    finally:
        server.shutdown()
        server.server_close()


def test_patching_too_late_warns_with_the_module_name(unpatched: None) -> None:
    early = types.ModuleType("early_bird")
    early.socket = socket.socket  # type: ignore[attr-defined] # as after "from socket import socket"
    sys.modules["early_bird"] = early
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            patch.patch_all()
        assert any(issubclass(w.category, patch.PatchedTooLate) and "early_bird" in str(w.message) for w in caught)
    finally:
        del sys.modules["early_bird"]


# -- unchanged programs in patched child processes ---------------------------------------------

def _run(node: DaemonProcess, code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "pilotsock.patch", "-c", textwrap.dedent(code), *args],
                            env=node.env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, result.stderr
    return result


def _start(node: DaemonProcess, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pilotsock.patch", *argv], env=node.env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_port(client: DaemonProcess, host: str, port: int) -> None:
    _run(client, f"""
        import socket, time
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(({host!r}, {port}), timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    """)


@pytest.fixture
def two_nodes(daemons: DaemonFactory) -> tuple[DaemonProcess, DaemonProcess]:
    return daemons("client"), daemons("server", "--hostname", "files")


def test_http_server_and_stdlib_clients_and_requests(two_nodes: tuple[DaemonProcess, DaemonProcess],
                                                     tmp_path: Path) -> None:
    client, server_node = two_nodes
    blob = os.urandom(20 * 1024 * 1024)
    (tmp_path / "blob.bin").write_bytes(blob)
    (tmp_path / "hello.txt").write_text("hello over pilot\n")
    server = _start(server_node, "-m", "http.server", "--protocol", "HTTP/1.1", "--bind", server_node.alias,
                    "--directory", str(tmp_path),
                    "8000")
    try:
        _wait_for_port(client, server_node.alias, 8000)
        result = _run(client, f"""
            import hashlib, http.client, urllib.request
            import requests, urllib3
            base = "http://{server_node.alias}:8000"
            print("urllib", urllib.request.urlopen(base + "/hello.txt", timeout=10).read().decode().strip())
            conn = http.client.HTTPConnection("files.pilot", 8000, timeout=10)
            for _ in range(3):  # keep-alive: one connection, several requests
                conn.request("GET", "/hello.txt")
                reply = conn.getresponse()
                body = reply.read()
            print("http.client", reply.status, body.decode().strip(), conn.sock.getpeername()[1])
            with requests.Session() as session:
                assert session.get(base + "/hello.txt", timeout=10).text == "hello over pilot\\n"
                digest = hashlib.sha256()
                with session.get(base + "/blob.bin", stream=True, timeout=30) as reply:
                    for chunk in reply.iter_content(1 << 16):
                        digest.update(chunk)
                pools = session.get_adapter(base).poolmanager.pools
                opened = sum(pools[key].num_connections for key in pools.keys())
                sent = sum(pools[key].num_requests for key in pools.keys())
                print("requests", digest.hexdigest(), opened, sent)
            pool = urllib3.PoolManager()
            print("urllib3", pool.request("GET", "http://files.pilot:8000/hello.txt").data.decode().strip())
        """)
        lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
        assert lines["urllib"] == "hello over pilot"
        assert lines["http.client"] == "200 hello over pilot 8000"
        assert lines["requests"] == f"{hashlib.sha256(blob).hexdigest()} 1 2"  # one kept-alive connection
        assert lines["urllib3"] == "hello over pilot"
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0]
    assert "GET /blob.bin" in output


SERVERS = {
    "socketserver": """
        import socketserver, sys
        class Upper(socketserver.StreamRequestHandler):
            def handle(self):
                self.wfile.write(self.rfile.readline().upper())
        with socketserver.ThreadingTCPServer((sys.argv[1], 9000), Upper) as server:
            server.serve_forever()
    """,
    "asyncio": """
        import asyncio, sys
        async def upper(reader, writer):
            writer.write((await reader.readline()).upper())
            await writer.drain()
            writer.close()
        async def main():
            server = await asyncio.start_server(upper, sys.argv[1], 9000)
            async with server:
                await server.serve_forever()
        asyncio.run(main())
    """,
    "xmlrpc": """
        import sys
        from xmlrpc.server import SimpleXMLRPCServer
        with SimpleXMLRPCServer((sys.argv[1], 9000), logRequests=False) as server:
            server.register_function(lambda text: text.upper(), "upper")
            server.serve_forever()
    """,
    "wsgiref": """
        import sys
        from wsgiref.simple_server import make_server, WSGIRequestHandler
        class Quiet(WSGIRequestHandler):
            def log_message(self, *args):
                pass
        def app(environ, start_response):
            size = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(size).upper()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [body]
        make_server(sys.argv[1], 9000, app, handler_class=Quiet).serve_forever()
    """,
}

CLIENTS = {
    "socketserver": """
        import socket, sys
        with socket.create_connection((sys.argv[1], 9000), timeout=10) as sock:
            sock.sendall(b"line\\n")
            print(sock.makefile("rb").readline().decode().strip())
    """,
    "asyncio": """
        import asyncio, sys
        async def main():
            reader, writer = await asyncio.open_connection(sys.argv[1], 9000)
            writer.write(b"line\\n")
            print((await reader.readline()).decode().strip())
            writer.close()
        asyncio.run(main())
    """,
    "xmlrpc": """
        import sys, xmlrpc.client
        print(xmlrpc.client.ServerProxy(f"http://{sys.argv[1]}:9000/").upper("line"))
    """,
    "wsgiref": """
        import sys, urllib.request
        print(urllib.request.urlopen(f"http://{sys.argv[1]}:9000/", data=b"line", timeout=10).read().decode())
    """,
}


SERVERS["aiohttp.web"] = """
    import sys
    from aiohttp import web
    async def upper(request):
        return web.Response(body=(await request.read()).upper())
    app = web.Application()
    app.router.add_post("/", upper)
    web.run_app(app, host=sys.argv[1], port=9000, print=None, handle_signals=True)
"""
CLIENTS["aiohttp.web"] = """
    import asyncio, sys, aiohttp, httpx
    url = f"http://{sys.argv[1]}:9000/"
    print(httpx.post(url, content=b"line", timeout=10).text)
    async def main():
        async with httpx.AsyncClient(timeout=10) as client:
            print((await client.post(url, content=b"line")).text)
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=b"line") as reply:
                print(await reply.text())
    asyncio.run(main())
"""


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_unchanged_servers(kind: str, two_nodes: tuple[DaemonProcess, DaemonProcess]) -> None:
    client, server_node = two_nodes
    server = _start(server_node, "-c", textwrap.dedent(SERVERS[kind]), server_node.alias)
    try:
        _wait_for_port(client, "files.pilot", 9000)
        result = _run(client, CLIENTS[kind], "files.pilot")
        assert set(result.stdout.split()) == {"LINE"}
    finally:
        server.terminate()
        server.communicate(timeout=10)


def test_requests_over_tls_with_a_ca_file(two_nodes: tuple[DaemonProcess, DaemonProcess], tmp_path: Path) -> None:
    client, server_node = two_nodes
    certificates = make_certificates(tmp_path / "tls", ["files.pilot", server_node.alias])
    (tmp_path / "secret.txt").write_text("tls over pilot")
    server = _start(server_node, "-c", textwrap.dedent(f"""
        import functools, http.server, ssl
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory={str(tmp_path)!r})
        server = http.server.ThreadingHTTPServer(({server_node.alias!r}, 8443), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain({str(certificates.cert_file)!r}, {str(certificates.key_file)!r})
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.serve_forever()
    """))
    try:
        _wait_for_port(client, "files.pilot", 8443)
        result = _run(client, f"""
            import requests
            reply = requests.get("https://files.pilot:8443/secret.txt", verify={str(certificates.ca_file)!r},
                                 timeout=10)
            print(reply.status_code, reply.text)
            try:
                requests.get("https://files.pilot:8443/secret.txt", timeout=10)  # system CAs: refused
            except requests.exceptions.SSLError:
                print("untrusted refused")
        """)
        assert result.stdout.splitlines() == ["200 tls over pilot", "untrusted refused"]
    finally:
        server.terminate()
        server.communicate(timeout=10)


def test_unknown_nodes_fail_like_unknown_hosts(two_nodes: tuple[DaemonProcess, DaemonProcess]) -> None:
    client, server_node = two_nodes
    started = time.monotonic()
    result = _run(client, f"""
        import urllib.error, urllib.request, requests
        for url in ("http://nobody.pilot/", "http://0-0000-0fff-0000.pilot/", "http://{server_node.alias}:1234/"):
            try:
                urllib.request.urlopen(url, timeout=5)
            except urllib.error.URLError as exc:
                print("urllib", type(exc.reason).__name__)
            try:
                requests.get(url, timeout=5)
            except requests.exceptions.ConnectionError as exc:
                print("requests", type(exc).__name__)
    """)
    assert time.monotonic() - started < 45
    # An unknown name is gaierror, an unregistered node EHOSTUNREACH (PeerUnreachable, a
    # ConnectionError), a closed port ECONNREFUSED: to requests all are ConnectionError.
    assert result.stdout.splitlines() == [
        "urllib gaierror", "requests ConnectionError",
        "urllib PeerUnreachable", "requests ConnectionError",
        "urllib ConnectionRefusedError", "requests ConnectionError",
    ]


def test_script_form_gets_its_argv_and_path(two_nodes: tuple[DaemonProcess, DaemonProcess], tmp_path: Path) -> None:
    client, _ = two_nodes
    (tmp_path / "helper_module.py").write_text("VALUE = 'imported from the script directory'\n")
    script = tmp_path / "tool.py"
    script.write_text(textwrap.dedent("""
        import socket, sys
        import helper_module
        print(sys.argv[1:], helper_module.VALUE, socket.gethostbyname("0-0000-0000-0001.pilot"))
    """))
    result = subprocess.run([sys.executable, "-m", "pilotsock.patch", str(script), "a", "b"], env=client.env,
                            capture_output=True, text=True, timeout=60, cwd="/", check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['a', 'b'] imported from the script directory 0:0000.0000.0001"
    usage = subprocess.run([sys.executable, "-m", "pilotsock.patch"], capture_output=True, text=True, timeout=60,
                           check=False)
    assert usage.returncode == 2 and "usage:" in usage.stderr


def test_child_processes_start_patched(two_nodes: tuple[DaemonProcess, DaemonProcess]) -> None:
    client, _ = two_nodes
    result = _run(client, """
        import subprocess, sys
        code = "import socket, sys; print(type(socket.socket).__module__, socket.socket.__module__)"
        print(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip())
        import multiprocessing
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1) as pool:
            print(pool.apply(eval, ("__import__('socket').getfqdn('0:0000.0000.0001')",)))
    """)
    first, second = result.stdout.splitlines()
    assert first.endswith("pilotsock.client.virtual_socket")
    assert second == "0-0000-0000-0001.pilot"


def test_strict_mode_refuses_kernel_loopback_connects(node: DaemonProcess) -> None:
    """PILOTSOCK_COMPAT=strict: the IPv4 loopback alias goes over Pilot; any other connect to the
    kernel's loopback raises EACCES, so a suite cannot pass by quietly using kernel sockets."""
    env = {**node.env, "PILOTSOCK_COMPAT": "strict"}
    result = subprocess.run([sys.executable, "-m", "pilotsock.patch", "-c", textwrap.dedent("""
        import errno, socket
        with socket.create_server(("127.0.0.1", 0)) as server:     # aliased: a virtual listener
            port = server.getsockname()[1]
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                conn, _ = server.accept()
                client.sendall(b"over pilot")
                print(conn.recv(20).decode(), client._pilot is not None)
                conn.close()
        with socket.create_server(("127.0.0.2", 0)) as kernel:      # not aliased: stays on the kernel
            for host in ("127.0.0.2", "::ffff:127.0.0.2"):
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                with socket.socket(family) as probe:
                    try:
                        probe.connect((host, kernel.getsockname()[1]))
                    except PermissionError as exc:
                        print(exc.errno == errno.EACCES, "strict mode" in str(exc))
        """)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["over pilot True", "True True", "True True"]


def test_loopback_targets() -> None:
    from pilotsock.client.socket_base import is_loopback_target

    for address in [("127.0.0.1", 1), ("127.9.9.9", 1), ("::1", 1, 0, 0), ("::ffff:127.0.0.1", 1), ("localhost", 1),
                    ("::1%lo", 1)]:
        assert is_loopback_target(address), address
    for address in [("10.0.0.1", 1), ("::2", 1), ("example.test", 1), "/tmp/sock", (), (1, 2)]:
        assert not is_loopback_target(address), address
