# SPDX-License-Identifier: Apache-2.0
"""In-process driver tests on loopback: RegistryServer + RegistryClient (wire.md §10.1).

These use real sockets on 127.0.0.1 with short, bounded timeouts; the protocol logic itself is
covered by the sans-IO tests.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from registry_harness import identity

from pilotsock.registry.client import (
    RegistryClient,
    RegistryError,
    RegistryTimeout,
    RegistryUnavailable,
)
from pilotsock.registry.server import RegistryServer, RegistryServerConfig
from pilotsock.wire.registry_messages import encode_registry_message

pytestmark = pytest.mark.timeout(30)


def run(coroutine: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 20))  # type: ignore[arg-type]


async def _with_server(
    tmp_path: Path, body: Callable[[RegistryServer], Awaitable[None]], **config: Any
) -> None:
    server = RegistryServer(
        RegistryServerConfig(
            db_path=str(tmp_path / "r.db"), listen=("127.0.0.1", 0), beacon=("127.0.0.1", 0), **config
        )
    )
    await server.start()
    try:
        await body(server)
    finally:
        await server.close()


def test_client_against_server(tmp_path: Path) -> None:
    async def body(server: RegistryServer) -> None:
        async with RegistryClient(*server.registry_address) as client:
            alice = identity(1)
            registered = await client.register(alice, "0.0.0.0:4000", hostname="alice")
            node = registered["node_id"]
            assert (await client.heartbeat(alice, node))["type"] == "heartbeat_ok"
            assert (await client.resolve_hostname("alice"))["node_id"] == node
            assert (await client.set_visibility(alice, node, True))["visibility"] == "public"
            assert (await client.lookup(node))["real_addr"] == "127.0.0.1:4000"
            with pytest.raises(RegistryError) as caught:
                await client.lookup(999)
            assert caught.value.response == {"type": "error", "error": "request failed"}
            assert isinstance(caught.value, OSError)
            beacons = (await client.beacon_list())["beacons"]
            assert server.beacon_address is not None
            assert beacons == [{"id": 1, "addr": f"127.0.0.1:{server.beacon_address[1]}"}]
            # Requests are serialised over the one connection.
            results = await asyncio.gather(*(client.lookup(node) for _ in range(20)))
            assert {r["node_id"] for r in results} == {node}

    run(_with_server(tmp_path, body))


def test_server_survives_garbage_and_oversize_frames(tmp_path: Path) -> None:
    async def body(server: RegistryServer) -> None:
        host, port = server.registry_address
        for junk in (b"GET / HTTP/1.1\r\n\r\n", struct.pack(">I", 2**30), b"\x00\x00\x00\x02[]"):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(junk)
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, no answer
            writer.close()
        async with RegistryClient(host, port) as client:
            assert (await client.request({"type": "list_networks"}))["type"] == "list_networks_ok"
        assert server.counters["bad_frames"] == 3

    run(_with_server(tmp_path, body))


def test_idle_connections_are_closed(tmp_path: Path) -> None:
    async def body(server: RegistryServer) -> None:
        reader, writer = await asyncio.open_connection(*server.registry_address)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()

    run(_with_server(tmp_path, body, idle_timeout_seconds=0.2))


def test_beacon_socket_answers_discover(tmp_path: Path) -> None:
    async def body(server: RegistryServer) -> None:
        assert server.beacon_address is not None
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.bind(("127.0.0.1", 0))
            sock.sendto(b"\x99garbage", server.beacon_address)
            sock.sendto(b"\x01\x00\x00\x00\x07", server.beacon_address)
            reply = await asyncio.wait_for(loop.sock_recv(sock, 2048), 5)
        assert reply[:6] == b"\x02\x04\x7f\x00\x00\x01"
        assert server.beacon.endpoint_of(7) is not None
        assert server.beacon.counters["dropped"] == 1

    run(_with_server(tmp_path, body))


async def _flaky_registry(answers: list[bool]) -> tuple[asyncio.Server, list[int]]:
    """Per connection, in order: True = answer requests, False = read one and hang up."""
    seen: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(seen)
        seen.append(index)
        behaviour = answers[index] if index < len(answers) else True
        try:
            while True:
                header = await reader.readexactly(4)
                await reader.readexactly(struct.unpack(">I", header)[0])
                if not behaviour:
                    break
                writer.write(encode_registry_message({"type": "lookup_ok", "node_id": 1}))
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0), seen


def test_client_reconnects_and_retries_once() -> None:
    async def body() -> None:
        server, seen = await _flaky_registry([True, False])
        port = server.sockets[0].getsockname()[1]
        async with RegistryClient("127.0.0.1", port, backoff_initial=0.01) as client:
            assert (await client.lookup(1))["type"] == "lookup_ok"
            assert (await client.lookup(1))["type"] == "lookup_ok"
            assert seen == [0]  # one persistent connection
        async with RegistryClient("127.0.0.1", port, backoff_initial=0.01) as client:
            # connection 1 hangs up after reading: reconnect (connection 2), retry once.
            assert (await client.lookup(1))["type"] == "lookup_ok"
            assert seen == [0, 1, 2]
        server.close()
        await server.wait_closed()

    run(body())


def test_client_gives_up_after_the_single_retry() -> None:
    async def body() -> None:
        server, seen = await _flaky_registry([False, False, False])
        port = server.sockets[0].getsockname()[1]
        async with RegistryClient("127.0.0.1", port, backoff_initial=0.01) as client:
            with pytest.raises(RegistryUnavailable) as caught:
                await client.lookup(1)
            assert isinstance(caught.value, ConnectionError)
            assert seen == [0, 1]
            assert (await client.lookup(1))["type"] == "lookup_ok"  # the next request redials
        server.close()
        await server.wait_closed()

    run(body())


def test_client_unreachable_registry() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused

        async def body() -> None:
            client = RegistryClient("127.0.0.1", port, reconnect_attempts=2, backoff_initial=0.01)
            with pytest.raises(RegistryUnavailable):
                await client.beacon_list()
            await client.close()

        run(body())


def test_client_request_timeout() -> None:
    async def body() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # never answers; returns when the client hangs up
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = RegistryClient(
            "127.0.0.1", port, request_timeout=0.1, reconnect_attempts=1, backoff_initial=0.01
        )
        with pytest.raises(RegistryTimeout) as caught:
            await client.beacon_list()
        assert isinstance(caught.value, TimeoutError)
        assert not client.is_connected  # a late answer must not be read as the next one
        await client.close()
        server.close()
        await server.wait_closed()

    run(body())


def test_request_rejects_invalid_messages() -> None:
    async def body() -> None:
        client = RegistryClient("127.0.0.1", 9)
        with pytest.raises(ValueError):
            await client.request({"no": "type"})

    run(body())


def test_close_interrupts_a_request_in_flight_and_is_final() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # refused: the request sits in reconnect back-off

        async def body() -> None:
            client = RegistryClient("127.0.0.1", port, backoff_initial=0.05)
            pending = asyncio.ensure_future(client.beacon_list())
            await asyncio.sleep(0.02)
            await client.close()
            with pytest.raises(RegistryUnavailable) as caught:
                await asyncio.wait_for(pending, 0.5)  # back-off alone would take 1.55 s
            assert caught.value.errno == errno.ESHUTDOWN
            with pytest.raises(RegistryUnavailable):
                await client.beacon_list()

        run(body())
