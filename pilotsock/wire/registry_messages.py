# SPDX-License-Identifier: Apache-2.0
"""Registry framing ``[u32 BE length][JSON object]`` and signature challenges (``wire.md`` §10).

Where it sits: ring 1. Shared by the registry server and the daemon's registry client.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from pilotsock.errors import MalformedFrame

MAX_FRAME_BYTES = 1 << 20  # 1 MiB
LENGTH_PREFIX = struct.Struct(">I")
GENERIC_ERROR = "request failed"


def encode_registry_message(message: dict[str, Any]) -> bytes:
    """Frame one JSON object. Raises ``ValueError`` if it has no ``type`` or is too large."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ValueError("a registry message is a JSON object with a string 'type'")
    body = json.dumps(message, separators=(",", ":")).encode()
    if len(body) > MAX_FRAME_BYTES:
        raise ValueError(f"registry message of {len(body)} bytes exceeds {MAX_FRAME_BYTES}")
    return LENGTH_PREFIX.pack(len(body)) + body


def decode_registry_body(body: bytes | memoryview) -> dict[str, Any]:
    """Decode the JSON body of one frame. Raises only ``MalformedFrame``."""
    try:
        value = json.loads(bytes(body))
    except (ValueError, RecursionError) as exc:
        raise MalformedFrame("registry.bad_json") from exc
    if not isinstance(value, dict):
        raise MalformedFrame("registry.not_object")
    if not isinstance(value.get("type"), str):
        raise MalformedFrame("registry.no_type")
    return value


class RegistryFrameDecoder:
    """Incremental decoder: ``feed`` bytes in any chunking, then iterate ``messages``.

    After a ``MalformedFrame`` the stream cannot be resynchronised; the caller closes it.
    """

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_frame_bytes

    def feed(self, data: bytes | memoryview) -> list[dict[str, Any]]:
        self._buffer += data
        messages = []
        while len(self._buffer) >= 4:
            (length,) = LENGTH_PREFIX.unpack_from(self._buffer, 0)
            if length > self._max:
                raise MalformedFrame("registry.too_long")
            if len(self._buffer) < 4 + length:
                break
            body = bytes(self._buffer[4:4 + length])
            del self._buffer[:4 + length]
            messages.append(decode_registry_body(body))
        return messages

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)


def is_error(response: dict[str, Any]) -> bool:
    """A client treats any response carrying an ``error`` string as failure."""
    return isinstance(response.get("error"), str) or response.get("type") == "error"


# Signature challenges (wire.md §10.2); node IDs in plain decimal.
def challenge_resolve(requester_id: int, node_id: int) -> bytes:
    return f"resolve:{requester_id}:{node_id}".encode()


def challenge_node(operation: str, node_id: int) -> bytes:
    """``set_visibility``/``set_hostname``/``set_tags``/``set_task_exec``/``deregister``/
    ``heartbeat``/``poll_handshakes``/``rotate`` challenges: ``<operation>:<node_id>``."""
    return f"{operation}:{node_id}".encode()


def challenge_pair(operation: str, node_id: int, peer_id: int) -> bytes:
    """``report_trust``/``revoke_trust``/``handshake``/``respond``/``punch``: ``<op>:<a>:<b>``."""
    return f"{operation}:{node_id}:{peer_id}".encode()
