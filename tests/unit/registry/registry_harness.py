# SPDX-License-Identifier: Apache-2.0
"""Helpers for registry unit tests: fixed identities and a thin service harness."""

from __future__ import annotations

from typing import Any

from pilotsock.identity import Identity
from pilotsock.registry.service import RegistryService

ERROR = {"type": "error", "error": "request failed"}
T0 = 1_700_000_000.0


def identity(n: int) -> Identity:
    """Deterministic identities so failures are reproducible."""
    return Identity.from_seed(bytes([n]) * 32)


class Harness:
    """Thin helper around a RegistryService: explicit times, default source address."""

    def __init__(self, service: RegistryService) -> None:
        self.service = service

    def send(
        self, message: dict[str, Any], *, now: float = T0, ip: str = "10.0.0.1", port: int = 40000
    ) -> dict[str, Any]:
        return self.service.handle(message, ip, port, now)

    def register(
        self,
        who: Identity,
        *,
        now: float = T0,
        ip: str = "10.0.0.1",
        port: int = 40000,
        listen_addr: str = "0.0.0.0:4000",
        **extra: Any,
    ) -> dict[str, Any]:
        message = {"type": "register", "listen_addr": listen_addr, "public_key": who.public_key_b64, **extra}
        return self.send(message, now=now, ip=ip, port=port)

    def node(self, who: Identity, **kwargs: Any) -> int:
        response = self.register(who, **kwargs)
        assert response["type"] == "register_ok", response
        return int(response["node_id"])

    def signed(
        self, who: Identity, challenge: str, message: dict[str, Any], *, now: float = T0
    ) -> dict[str, Any]:
        return self.send({**message, "signature": who.sign_b64(challenge.encode())}, now=now)
