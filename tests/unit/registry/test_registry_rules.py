# SPDX-License-Identifier: Apache-2.0
"""Pure validation helpers of the registry (wire.md §10.4, §14)."""

from __future__ import annotations

import pytest

from pilotsock.endpoints import format_host_port, is_loopback_host, split_host_port
from pilotsock.registry.rules import field_u32, hostname_problem, real_address


@pytest.mark.parametrize("name", ["alice", "my-agent", "node42", "a", "x" * 63])
def test_valid_hostnames(name: str) -> None:
    assert hostname_problem(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "Alice",
        "hello world",
        "-start",
        "end-",
        "hello@world",
        "hello.world",
        "x" * 64,
        "localhost",
        "backbone",
        "broadcast",
        "alice\n",
    ],
)
def test_invalid_hostnames(name: str) -> None:
    assert hostname_problem(name) is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        (":0", ("", 0)),
        ("[::1]:80", ("::1", 80)),
        ("localhost:65535", ("localhost", 65535)),
        ("::1:80", None),
        ("host", None),
        ("host:65536", None),
        ("host:-1", None),
        ("[::1]80", None),
        ("host:", None),
    ],
)
def test_split_host_port(text: str, expected: object) -> None:
    assert split_host_port(text) == expected


def test_format_host_port() -> None:
    assert format_host_port("10.0.0.1", 1) == "10.0.0.1:1"
    assert format_host_port("::1", 2) == "[::1]:2"
    assert format_host_port("::ffff:10.0.0.1", 3) == "10.0.0.1:3"
    assert format_host_port("fe80::1%eth0", 4) == "[fe80::1%eth0]:4"


def test_is_loopback_host() -> None:
    for host in ("127.0.0.1", "127.9.9.9", "::1", "::1%lo", "::ffff:127.0.0.1", "localhost", "LOCALHOST"):
        assert is_loopback_host(host), host
    for host in ("10.0.0.1", "::2", "0.0.0.0", "", "example.test", "::ffff:10.0.0.1"):
        assert not is_loopback_host(host), host


def test_real_address_port_zero_falls_back_to_source() -> None:
    assert real_address("0.0.0.0:0", "10.0.0.1", 555) == "10.0.0.1:555"
    assert real_address(None, "10.0.0.1", 555) == "10.0.0.1:555"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        (5.0, 5),
        (5.9, 5),
        (True, 0),
        (-1, 0),
        (2**32, 0),
        ("5", 0),
        (None, 0),
        (float("nan"), 0),
        (float("inf"), 0),
        (2**32 - 1, 2**32 - 1),
    ],
)
def test_field_u32_reads_like_go(value: object, expected: int) -> None:
    assert field_u32({"n": value}, "n") == expected
