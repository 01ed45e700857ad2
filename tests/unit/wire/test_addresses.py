# SPDX-License-Identifier: Apache-2.0
"""Virtual addresses (wire.md §2) and the URL-safe alias / routing decision (socket-design.md §5)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pilotsock.addresses import (
    BROADCAST_NODE,
    ZERO,
    Addr,
    format_address,
    is_pilot_name,
    is_virtual_host,
    parse_address,
    parse_alias,
    parse_node_argument,
    parse_socket_address,
    to_virtual,
)

from ._support import load_vectors, u16, u32

ADDRESSES = load_vectors("addresses.json")
VALID = ADDRESSES["valid"]
REJECTED = [v["text"] for v in ADDRESSES["rejected"]]
addrs = st.builds(Addr, u16, u32)

# wire.md §2 "Must be rejected", verbatim; the JSON file adds more cases of the same rules.
SPEC_MUST_REJECT = ["", "0", "0:0000", "0:0000.0000", "0:0000.0000.0000.0000", "0:000.0000.0000",
                    "99999:0000.0000.0000", "0:ZZZZ.0000.0000", "1:0000.0000.0001"]


# ---------------------------------------------------------------------------------------------
# Text form
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("vector", VALID, ids=lambda v: v["text"])
def test_valid_vectors(vector):
    addr = Addr(vector["network"], vector["node"])
    assert parse_address(vector["text"]) == addr
    assert format_address(addr.network, addr.node) == vector["text"]
    assert str(addr) == vector["text"]
    assert Addr.parse(vector["text"]) == addr


@pytest.mark.parametrize("vector", ADDRESSES["accepted_non_canonical"], ids=lambda v: v["text"])
def test_accepted_non_canonical(vector):
    assert str(parse_address(vector["text"])) == vector["canonical"]


@pytest.mark.parametrize("text", SPEC_MUST_REJECT)
def test_spec_must_reject_list(text):
    with pytest.raises(ValueError):
        parse_address(text)


@pytest.mark.parametrize("text", REJECTED)
def test_rejected_vectors(text):
    with pytest.raises(ValueError):
        parse_address(text)
    with pytest.raises(ValueError):
        parse_socket_address(text + ":80")
    if not is_pilot_name(text):  # the alias spelling is valid routing input, just not colon text
        assert to_virtual(text) is None


def test_spec_list_is_covered_by_vectors():
    assert set(SPEC_MUST_REJECT) <= set(REJECTED)


def test_parse_address_type_error_for_non_str():
    with pytest.raises(TypeError):
        parse_address(b"0:0000.0000.0001")  # type: ignore[arg-type]


def test_canonical_output_is_uppercase_and_padded():
    assert format_address(0, 42) == "0:0000.0000.002A"
    assert format_address(1, 0xF2910004) == "1:0001.F291.0004"
    assert format_address(23, 1) == "23:0017.0000.0001"
    assert format_address(65535, 0xFFFFFFFF) == "65535:FFFF.FFFF.FFFF"
    assert str(parse_address("10:000a.abcd.ef01")) == "10:000A.ABCD.EF01"


@pytest.mark.parametrize("network, node", [(-1, 0), (65536, 0), (0, -1), (0, 1 << 32)])
def test_format_rejects_out_of_range(network, node):
    with pytest.raises(ValueError):
        format_address(network, node)


def test_specials():
    assert Addr(0, 0) == ZERO and ZERO.is_zero and str(ZERO) == "0:0000.0000.0000"
    broadcast = Addr(7, BROADCAST_NODE)
    assert broadcast.is_broadcast and str(broadcast) == "7:0007.FFFF.FFFF"
    assert not Addr(0, 1).is_zero and not Addr(0, 1).is_broadcast
    assert not Addr(0xFFFF, 0xFFFFFFFE).is_broadcast  # "is broadcast" tests the node part only
    assert Addr(0xFFFF, 0).is_broadcast is False and Addr(0, 0xFFFFFFFF).is_broadcast


# ---------------------------------------------------------------------------------------------
# Binary form
# ---------------------------------------------------------------------------------------------

def test_binary_layout():
    assert Addr(1, 0xF2910004).to_bytes() == bytes.fromhex("0001f2910004")
    assert Addr.from_bytes(bytes.fromhex("ffffffffffff")) == Addr(65535, 0xFFFFFFFF)


@pytest.mark.parametrize("length", [0, 5, 7])
def test_from_bytes_length(length):
    with pytest.raises(ValueError):
        Addr.from_bytes(bytes(length))


# ---------------------------------------------------------------------------------------------
# Alias
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("vector", VALID, ids=lambda v: v["alias"])
def test_alias_vectors(vector):
    addr = Addr(vector["network"], vector["node"])
    assert addr.alias() == vector["alias"]
    assert parse_alias(vector["alias"]) == addr
    assert parse_alias(vector["alias"].upper()) == addr
    assert parse_alias(vector["alias"] + ".") == addr
    assert urlsplit(f"http://{vector['alias']}:8080/x").hostname == vector["alias"]


@pytest.mark.parametrize(
    "alias",
    ["0-0000-0000-0005", "0-0000-0000-0005.pilots", "0-0000-0005.pilot", "0-0000-0000-0000-0005.pilot",
     "1-0000-0000-0005.pilot", "99999-0000-0000-0000.pilot", "0-000-0000-0005.pilot",
     "0-zzzz-0000-0005.pilot", "0:0000.0000.0005", "alice.pilot", ".pilot", "0-0000-0000-0005:1.pilot",
     "0-0000-0000.0005-0000.pilot", "-0-0000-0000.pilot"],
)
def test_alias_rejects(alias):
    with pytest.raises(ValueError):
        parse_alias(alias)


# ---------------------------------------------------------------------------------------------
# Socket addresses, command-line nodes, routing decision
# ---------------------------------------------------------------------------------------------

def test_socket_address():
    assert parse_socket_address("1:0001.F291.0004:1000") == (Addr(1, 0xF2910004), 1000)
    assert parse_socket_address("0:0000.0000.0001:0") == (Addr(0, 1), 0)
    assert parse_socket_address("0:0000.0000.0001:65535") == (Addr(0, 1), 65535)


@pytest.mark.parametrize("text", ["0:0000.0000.0001", "0:0000.0000.0001:", "0:0000.0000.0001:65536",
                                  "0:0000.0000.0001:-1", "0:0000.0000.0001:+1", "0:0000.0000.0001:x",
                                  "0:0000.0000.0001: 80", "", ":80", "1:0000.0000.0001:80"])
def test_socket_address_rejects(text):
    with pytest.raises(ValueError):
        parse_socket_address(text)


def test_node_argument():
    assert parse_node_argument("11") == Addr(0, 11)
    assert parse_node_argument("4294967295") == Addr(0, 0xFFFFFFFF)
    assert parse_node_argument("1:0001.F291.0004") == Addr(1, 0xF2910004)
    assert parse_node_argument("0-0000-0000-0005.PILOT") == Addr(0, 5)
    for bad in ["4294967296", "", "-1", "0x10", "1:0000.0000.0001"]:
        with pytest.raises(ValueError):
            parse_node_argument(bad)


def test_to_virtual():
    addr = Addr(1, 0xF2910004)
    assert to_virtual(addr) is addr
    assert to_virtual("1:0001.f291.0004") == addr
    assert to_virtual("1-0001-F291-0004.pilot") == addr
    assert to_virtual("1-0001-f291-0004.pilot.") == addr
    for kernel in ["", "localhost", "127.0.0.1", "::1", "example.com", "alice.pilot", "a-b-c-d.pilot",
                   "1:0000.0000.0001", None, 42, b"0:0000.0000.0001", ("0:0000.0000.0001", 1)]:
        assert to_virtual(kernel) is None


def test_is_pilot_name():
    assert is_pilot_name("alice.pilot") and is_pilot_name("ALICE.PILOT.")
    assert is_pilot_name("0-0000-0000-0005.pilot")
    assert not is_pilot_name("pilot.example.com") and not is_pilot_name("0:0000.0000.0005")
    assert not is_pilot_name(None) and not is_pilot_name(b"a.pilot")


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(addrs)
def test_round_trips(addr):
    text = str(addr)
    assert text == text.upper().replace("X", "x")  # no lowercase hex digits
    assert parse_address(text) == addr
    assert parse_address(text.lower()) == addr
    assert Addr.from_bytes(addr.to_bytes()) == addr
    alias = addr.alias()
    assert alias == alias.lower()
    assert parse_alias(alias) == addr
    assert parse_alias(alias.upper()) == addr
    assert to_virtual(text) == addr and to_virtual(alias.upper()) == addr
    assert is_pilot_name(alias)
    assert parse_node_argument(text) == addr and parse_node_argument(alias) == addr


@settings(max_examples=200, deadline=None)
@given(addrs, u16, st.data())
def test_socket_round_trip_and_mixed_case(addr, port, data):
    assert parse_socket_address(f"{addr}:{port}") == (addr, port)
    alias = addr.alias()
    mixed = "".join(c.upper() if data.draw(st.booleans()) else c for c in alias)
    assert parse_alias(mixed) == addr


@settings(max_examples=200, deadline=None)
@given(u16, u32, u16.filter(lambda n: n), st.integers(0, 3))
def test_network_mismatch_rejected(network, node, delta, zeros):
    other = (network + delta) % 0x10000
    text = f"{'0' * zeros}{network}:{other:04X}.{node >> 16:04X}.{node & 0xFFFF:04X}"
    with pytest.raises(ValueError):
        parse_address(text)


address_like = st.one_of(
    st.text(max_size=30),
    st.text(alphabet="0123456789abcdefABCDEFxX:.-+ _\n", max_size=25),
    st.builds(lambda a, junk, at: (lambda s: s[:at] + junk + s[at:])(str(a)), addrs,
              st.text(max_size=3), st.integers(0, 25)),
)


@settings(max_examples=400, deadline=None)
@given(address_like)
def test_fuzz_text(text):
    """Parsers return a value or raise ValueError; accepted input is canonical up to case/zeros."""
    try:
        addr = parse_address(text)
    except ValueError:
        pass
    else:
        network, rest = text.split(":", 1)
        assert str(addr) == f"{int(network)}:{rest.upper()}"
    for parse in (parse_alias, parse_socket_address, parse_node_argument):
        try:
            parse(text)
        except ValueError:
            pass
    assert to_virtual(text) is None or isinstance(to_virtual(text), Addr)
    assert isinstance(is_pilot_name(text), bool)


def test_is_virtual_host_covers_every_spelling_and_nothing_else():
    for host in ("0:0000.0000.0005", "0-0000-0000-0005.pilot", "0-0000-0000-0005.PILOT.", "name.pilot",
                 Addr(0, 5)):
        assert is_virtual_host(host), host
    for host in ("localhost", "127.0.0.1", "::1", "", None, b"name.pilot", ("name.pilot", 80), "pilot"):
        assert not is_virtual_host(host), host
