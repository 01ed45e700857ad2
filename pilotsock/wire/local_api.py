# SPDX-License-Identifier: Apache-2.0
"""Local API framing between a client process and its daemon: ``[u32 BE length][msgpack map]``.

Where it sits: ring 1. Client socket layer <-> control connection (AF_UNIX stream, 0600) <-> the
daemon's local API server. File descriptors travel beside a frame with SCM_RIGHTS; a frame that
carries one says so with ``"fd": 1`` so a reader can pair frames and descriptors in order.

Requests carry ``"op"``; replies carry ``"ok"`` and, on failure, ``"code"`` (an
``errors.ErrorCode``) and ``"detail"``; unsolicited pushes (accepted connections) carry ``"ev"``.
"""

from __future__ import annotations

import enum
import struct
from typing import Any

import msgpack

from pilotsock.addresses import Addr
from pilotsock.errors import ErrorCode, MalformedFrame

MAX_FRAME_BYTES = 64 * 1024
LENGTH_PREFIX = struct.Struct(">I")


class Op(str, enum.Enum):
    INFO = "info"
    BIND = "bind"
    LISTEN = "listen"
    CONNECT = "connect"
    RESOLVE_HOSTNAME = "resolve_hostname"
    STATS = "stats"
    STREAM_OPTION = "stream_option"


class Event(str, enum.Enum):
    ACCEPT = "accept"


def encode_frame(message: dict[str, Any]) -> bytes:
    """Frame one map. Raises ``ValueError`` if the encoded body exceeds the limit."""
    body = msgpack.packb(message, use_bin_type=True)
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"local API frame of {len(body)} bytes exceeds {MAX_FRAME_BYTES}")
    return LENGTH_PREFIX.pack(len(body)) + body


def decode_body(body: bytes | memoryview) -> dict[str, Any]:
    """Decode one frame body. Raises only ``MalformedFrame``."""
    try:
        # unpackb takes no max_buffer_size (that is an Unpacker option); its size limits default
        # to len(body), and FrameDecoder already caps a body at MAX_FRAME_BYTES.
        value = msgpack.unpackb(bytes(body), raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise MalformedFrame("local_api.bad_msgpack") from exc
    if not isinstance(value, dict):
        raise MalformedFrame("local_api.not_map")
    return value


class FrameDecoder:
    """Incremental decoder; feed any chunking. A ``MalformedFrame`` means: close the channel."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes | memoryview) -> list[dict[str, Any]]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= 4:
            (length,) = LENGTH_PREFIX.unpack_from(self._buffer, 0)
            if length > MAX_FRAME_BYTES:
                raise MalformedFrame("local_api.too_long")
            if len(self._buffer) < 4 + length:
                break
            body = bytes(self._buffer[4:4 + length])
            del self._buffer[:4 + length]
            frames.append(decode_body(body))
        return frames

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)


# Non-blocking connect (socket-design.md G6): the client writes this many bytes into its end of
# the stream pair with a minimal SO_SNDBUF, so its fd stays unwritable until the daemon consumes
# them, which it does only once the virtual handshake succeeds. On failure the daemon writes one
# error frame and closes its end with the guard unread: the client's SO_ERROR reads ECONNRESET
# and the frame says why. No bytes of a successful connection are ever control data.
CONNECT_GUARD_BYTES = 1024

# Datagram sockets: each AF_UNIX SEQPACKET message between an application and its daemon is this
# prefix (the remote node and port: destination on the way out, source on the way in) + payload.
DATAGRAM_ADDRESS = struct.Struct(">HIH")  # network, node, port
MAX_DATAGRAM_PAYLOAD = 65437  # wire.md §5: IPv4 UDP 65507 minus PILS overhead 70

# The daemon binds its end of each stream pair to an abstract name that the application's
# getpeername() returns, so the virtual addresses survive dup/fork/fd passing (G11).
LABEL_PREFIX = "\0pilotsock"


def stream_label(peer: Addr, peer_port: int, local: Addr, local_port: int, tag: str) -> str:
    """``\\0pilotsock|peer|peer_port|local|local_port|tag`` (tag: unique per daemon)."""
    return f"{LABEL_PREFIX}|{peer}|{peer_port}|{local}|{local_port}|{tag}"


def parse_label(name: object) -> tuple[Addr, int, Addr, int] | None:
    """Inverse of :func:`stream_label`: (peer, peer_port, local, local_port), or None for any
    other name (an unlabelled socket, a filesystem path, an Internet address)."""
    if isinstance(name, bytes):
        try:
            name = name.decode()
        except UnicodeDecodeError:
            return None
    if not isinstance(name, str) or not name.startswith(LABEL_PREFIX + "|"):
        return None
    parts = name.split("|")
    if len(parts) != 6:
        return None
    try:
        return Addr.parse(parts[1]), int(parts[2]), Addr.parse(parts[3]), int(parts[4])
    except ValueError:
        return None


def ok_reply(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def error_reply(code: ErrorCode, detail: str = "") -> dict[str, Any]:
    return {"ok": False, "code": int(code), "detail": detail}
