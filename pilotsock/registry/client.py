# SPDX-License-Identifier: Apache-2.0
"""Registry client (driver): one persistent TCP connection, lock-step requests (``wire.md`` §10.1).

Where it sits: daemon → **RegistryClient.request** → ``encode_registry_message`` → TCP →
registry → ``[u32 len][JSON]`` → ``decode_registry_body`` → response dict.

Rules (§10.1): requests are serialised (one in flight); on a transport error the client
reconnects (up to ``reconnect_attempts`` dials, back-off 0.5 s doubling, capped at 10 s) and
retries the request **once**. A response carrying an ``error`` string raises ``RegistryError``
(the registry always says only "request failed"). Signed convenience methods build the exact
challenges of §10.2 with the caller's ``Identity``.

Exceptions raised here: ``RegistryError`` (the registry refused), ``RegistryUnavailable``
(``ConnectionError``: could not connect, connection lost, bad frame) and ``RegistryTimeout``
(``TimeoutError``: no response within ``request_timeout``). All derive from ``PilotError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from typing import Any

from pilotsock.errors import MalformedFrame, PilotError
from pilotsock.identity import Identity
from pilotsock.wire.registry_messages import (
    LENGTH_PREFIX,
    MAX_FRAME_BYTES,
    challenge_node,
    challenge_pair,
    challenge_resolve,
    decode_registry_body,
    encode_registry_message,
    is_error,
)

CONNECT_TIMEOUT_SECONDS = 5.0  # §10.1: 5 s dial timeout
REQUEST_TIMEOUT_SECONDS = 10.0
RECONNECT_ATTEMPTS = 5  # §10.1
BACKOFF_INITIAL_SECONDS = 0.5  # §10.1: 0.5 s doubling to 10 s
BACKOFF_MAX_SECONDS = 10.0
_EREMOTEIO = getattr(errno, "EREMOTEIO", errno.EIO)


class RegistryError(PilotError):
    """The registry answered with an error. ``response`` is the error object it sent."""

    def __init__(self, response: dict[str, Any], request_type: str = "") -> None:
        detail = str(response.get("error", "error"))
        if request_type:
            detail = f"{request_type}: {detail}"
        super().__init__(_EREMOTEIO, f"{os.strerror(_EREMOTEIO)} (pilot: registry {detail})")
        self.response = response
        self.request_type = request_type


class RegistryUnavailable(PilotError, ConnectionError):
    """The registry could not be reached, or the connection broke mid-request."""


class RegistryTimeout(PilotError, TimeoutError):
    """No response within the request (or connect) timeout."""


def _unavailable(exc: BaseException, detail: str) -> RegistryUnavailable:
    number = exc.errno if isinstance(exc, OSError) and exc.errno else errno.ECONNRESET
    return RegistryUnavailable(number, f"{os.strerror(number)} (pilot: registry {detail})")


def _timed_out(detail: str) -> RegistryTimeout:
    return RegistryTimeout(errno.ETIMEDOUT, f"{os.strerror(errno.ETIMEDOUT)} (pilot: {detail})")


class RegistryClient:
    """Async registry client for one registry address.

    Args:
        host, port: the registry's TCP address.
        connect_timeout: per-dial timeout.
        request_timeout: bound on one exchange (write + response).
        reconnect_attempts / backoff_initial: the reconnect policy after a transport error.

    Call ``await close()`` when done (or use ``async with``).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
        reconnect_attempts: int = RECONNECT_ATTEMPTS,
        backoff_initial: float = BACKOFF_INITIAL_SECONDS,
    ) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.reconnect_attempts = reconnect_attempts
        self.backoff_initial = backoff_initial
        self._lock = asyncio.Lock()
        self._closed = False
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def is_connected(self) -> bool:
        """True while the connection is open and the registry has not closed its side
        (e.g. after the 5-minute idle deadline); a request then dials without back-off."""
        return (
            self._writer is not None
            and not self._writer.is_closing()
            and self._reader is not None
            and not self._reader.at_eof()
        )

    async def close(self) -> None:
        """Close the client for good, without waiting for a request in flight.

        A request in flight fails with ``RegistryUnavailable`` (no reconnect is attempted after
        ``close``), and so does every later request.
        """
        self._closed = True
        await self._disconnect()

    # -- core ------------------------------------------------------------------------------

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return its (successful) response.

        Raises:
            RegistryError: the registry answered with an error.
            RegistryUnavailable / RegistryTimeout: transport failure after the reconnect and
                single retry of §10.1.
            ValueError: ``message`` has no string ``type`` or is larger than 1 MiB.
        """
        frame = encode_registry_message(message)
        async with self._lock:
            self._raise_if_closed()
            try:
                try:
                    if not self.is_connected:
                        await self._connect()
                    response = await self._exchange(frame)
                except (RegistryUnavailable, RegistryTimeout):
                    self._drop_connection()
                    await self._reconnect()
                    response = await self._exchange(frame)
            except BaseException:
                # Transport failure or cancellation mid-exchange: a late response could still
                # arrive and would be read as the answer to the next request, so drop the
                # connection; the next request dials afresh.
                self._drop_connection()
                raise
        if is_error(response):
            raise RegistryError(response, str(message["type"]))
        return response

    def _raise_if_closed(self) -> None:
        if self._closed:
            raise RegistryUnavailable(
                errno.ESHUTDOWN, f"{os.strerror(errno.ESHUTDOWN)} (pilot: registry client closed)"
            )

    async def _connect(self) -> None:
        self._raise_if_closed()
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.connect_timeout
            )
        except TimeoutError as exc:
            raise _timed_out(f"connect to registry {self.host}:{self.port}") from exc
        except OSError as exc:
            raise _unavailable(exc, f"connect to {self.host}:{self.port}: {exc}") from exc
        if self._closed:  # close() ran while we were dialling
            self._drop_connection()
            self._raise_if_closed()
        sock = self._writer.get_extra_info("socket") if self._writer is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def _reconnect(self) -> None:
        delay = self.backoff_initial
        attempts = max(1, self.reconnect_attempts)
        for attempt in range(1, attempts + 1):
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_SECONDS)
            try:
                await self._connect()
                return
            except (RegistryUnavailable, RegistryTimeout):
                if attempt == attempts or self._closed:
                    raise

    async def _exchange(self, frame: bytes) -> dict[str, Any]:
        reader, writer = self._reader, self._writer
        if reader is None or writer is None:
            raise _unavailable(ConnectionResetError(), "not connected")
        try:
            return await asyncio.wait_for(self._round_trip(reader, writer, frame), self.request_timeout)
        except TimeoutError as exc:
            raise _timed_out(f"no response from registry in {self.request_timeout} s") from exc
        except MalformedFrame as exc:
            raise _unavailable(exc, f"bad response frame: {exc.reason}") from exc
        except asyncio.IncompleteReadError as exc:
            raise _unavailable(ConnectionResetError(), "closed the connection") from exc
        except OSError as exc:
            raise _unavailable(exc, f"connection failed: {exc}") from exc

    @staticmethod
    async def _round_trip(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, frame: bytes
    ) -> dict[str, Any]:
        writer.write(frame)
        await writer.drain()
        (length,) = LENGTH_PREFIX.unpack(await reader.readexactly(LENGTH_PREFIX.size))
        if length > MAX_FRAME_BYTES:
            raise MalformedFrame("registry.too_long")
        return decode_registry_body(await reader.readexactly(length))

    def _drop_connection(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()

    async def _disconnect(self) -> None:
        writer = self._writer
        self._drop_connection()
        if writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    # -- convenience (§10.3; signatures §10.2) ---------------------------------------------

    async def register(
        self,
        identity: Identity,
        listen_addr: str,
        hostname: str | None = None,
        owner: str | None = None,
    ) -> dict[str, Any]:
        """``register`` → ``register_ok`` (``node_id``, ``address``, maybe ``hostname_error``)."""
        message: dict[str, Any] = {
            "type": "register",
            "listen_addr": listen_addr,
            "public_key": identity.public_key_b64,
        }
        if hostname:
            message["hostname"] = hostname
        if owner:
            message["owner"] = owner
        return await self.request(message)

    async def lookup(self, node_id: int) -> dict[str, Any]:
        return await self.request({"type": "lookup", "node_id": node_id})

    async def resolve(self, identity: Identity, requester_id: int, node_id: int) -> dict[str, Any]:
        """``resolve`` signed by the requester; private targets need a trust pair (§10.5)."""
        return await self.request(
            {
                "type": "resolve",
                "node_id": node_id,
                "requester_id": requester_id,
                "signature": identity.sign_b64(challenge_resolve(requester_id, node_id)),
            }
        )

    async def resolve_hostname(self, hostname: str) -> dict[str, Any]:
        return await self.request({"type": "resolve_hostname", "hostname": hostname})

    async def heartbeat(self, identity: Identity, node_id: int) -> dict[str, Any]:
        return await self._signed_node_request(identity, "heartbeat", node_id)

    async def deregister(self, identity: Identity, node_id: int) -> dict[str, Any]:
        return await self._signed_node_request(identity, "deregister", node_id)

    async def set_visibility(self, identity: Identity, node_id: int, public: bool) -> dict[str, Any]:
        return await self._signed_node_request(identity, "set_visibility", node_id, public=public)

    async def set_hostname(self, identity: Identity, node_id: int, hostname: str) -> dict[str, Any]:
        """Set (or with ``""`` clear) the hostname; a taken or invalid name is an error."""
        return await self._signed_node_request(identity, "set_hostname", node_id, hostname=hostname)

    async def set_tags(self, identity: Identity, node_id: int, tags: list[str]) -> dict[str, Any]:
        return await self._signed_node_request(identity, "set_tags", node_id, tags=tags)

    async def set_task_exec(self, identity: Identity, node_id: int, enabled: bool) -> dict[str, Any]:
        return await self._signed_node_request(identity, "set_task_exec", node_id, enabled=enabled)

    async def poll_handshakes(self, identity: Identity, node_id: int) -> dict[str, Any]:
        """Fetch and clear this node's relayed handshake requests and responses."""
        return await self._signed_node_request(identity, "poll_handshakes", node_id)

    async def report_trust(self, identity: Identity, node_id: int, peer_id: int) -> dict[str, Any]:
        return await self._signed_pair_request(identity, "report_trust", "report_trust", node_id, peer_id)

    async def revoke_trust(self, identity: Identity, node_id: int, peer_id: int) -> dict[str, Any]:
        return await self._signed_pair_request(identity, "revoke_trust", "revoke_trust", node_id, peer_id)

    async def request_handshake(
        self, identity: Identity, from_node_id: int, to_node_id: int, justification: str = ""
    ) -> dict[str, Any]:
        return await self.request(
            {
                "type": "request_handshake",
                "from_node_id": from_node_id,
                "to_node_id": to_node_id,
                "justification": justification,
                "signature": identity.sign_b64(challenge_pair("handshake", from_node_id, to_node_id)),
            }
        )

    async def respond_handshake(
        self, identity: Identity, node_id: int, peer_id: int, accept: bool
    ) -> dict[str, Any]:
        return await self._signed_pair_request(
            identity, "respond_handshake", "respond", node_id, peer_id, accept=accept
        )

    async def rotate_key(self, identity: Identity, node_id: int, new_public_key_b64: str) -> dict[str, Any]:
        """Replace the node's key; ``identity`` is the **current** (old) key (§10.2)."""
        return await self._signed_node_request(
            identity,
            "rotate_key",
            node_id,
            challenge_operation="rotate",
            new_public_key=new_public_key_b64,
        )

    async def beacon_list(self) -> dict[str, Any]:
        """``beacon_list_ok`` with ``beacons`` [{``id``, ``addr``}], co-located beacon included."""
        return await self.request({"type": "beacon_list"})

    async def _signed_node_request(
        self,
        identity: Identity,
        kind: str,
        node_id: int,
        *,
        challenge_operation: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        challenge = challenge_node(challenge_operation or kind, node_id)
        message = {"type": kind, "node_id": node_id, **fields, "signature": identity.sign_b64(challenge)}
        return await self.request(message)

    async def _signed_pair_request(
        self,
        identity: Identity,
        kind: str,
        operation: str,
        node_id: int,
        peer_id: int,
        **fields: Any,
    ) -> dict[str, Any]:
        message = {
            "type": kind,
            "node_id": node_id,
            "peer_id": peer_id,
            **fields,
            "signature": identity.sign_b64(challenge_pair(operation, node_id, peer_id)),
        }
        return await self.request(message)


def request_sync(
    host: str, port: int, message: dict[str, Any], timeout: float = 5.0, *, check: bool = False
) -> dict[str, Any]:
    """Blocking one-shot request on a fresh connection (tests, command-line tools).

    Returns the response as sent, error responses included, unless ``check`` is true, in which
    case an error response raises ``RegistryError``. Transport failures raise ``OSError``
    subclasses (``RegistryUnavailable``, ``RegistryTimeout``).
    """
    frame = encode_registry_message(message)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(frame)
            header = _recv_exactly(sock, LENGTH_PREFIX.size)
            (length,) = LENGTH_PREFIX.unpack(header)
            if length > MAX_FRAME_BYTES:
                raise MalformedFrame("registry.too_long")
            response = decode_registry_body(_recv_exactly(sock, length))
    except TimeoutError as exc:
        raise _timed_out(f"registry {host}:{port} did not answer in {timeout} s") from exc
    except MalformedFrame as exc:
        raise _unavailable(exc, f"bad response frame: {exc.reason}") from exc
    except OSError as exc:
        if isinstance(exc, PilotError):
            raise
        raise _unavailable(exc, f"{host}:{port}: {exc}") from exc
    if check and is_error(response):
        raise RegistryError(response, str(message["type"]))
    return response


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < count:
        chunk = sock.recv(count - len(chunks))
        if not chunk:
            raise ConnectionResetError(errno.ECONNRESET, "registry closed the connection")
        chunks += chunk
    return bytes(chunks)
