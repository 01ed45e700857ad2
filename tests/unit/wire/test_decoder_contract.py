# SPDX-License-Identifier: Apache-2.0
"""Cross-codec contract (style.md §7): every ``decode_*`` in ``pilotsock.wire`` returns a value or
raises ``MalformedFrame`` for *any* input bytes, whatever the buffer type.

Decoders are discovered by name, so a new ``decode_*`` function is fuzzed without editing this file.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pilotsock.wire
from pilotsock.wire.local_api import FrameDecoder
from pilotsock.wire.registry_messages import RegistryFrameDecoder

from ._support import buffer_kinds, cuts, decode_or_malformed, split_at


def discover_decoders():
    found = {}
    for info in pkgutil.iter_modules(pilotsock.wire.__path__):
        module = importlib.import_module(f"pilotsock.wire.{info.name}")
        for name, func in inspect.getmembers(module, inspect.isfunction):
            if func.__module__ == module.__name__ and (
                    name.startswith("decode_") or name == "classify_datagram"):
                found[f"{info.name}.{name}"] = func
    return found


DECODERS = discover_decoders()

# A prefix zoo so random tails reach the deeper branches of every decoder.
PREFIXES = [b"", b"PILT", b"PILS", b"PILK", b"PILA", b"PILP", b"SACK\x01", b"SACK\x04", b"\x01",
            b"\x02\x04", b"\x02\x10", b"\x04\x04", b"\x05", b"\x06", b"\x07", b"\x11\x01\x00\x00",
            b"{", b'{"type":', b"\x81", b"\x80"]
inputs = st.builds(lambda prefix, rest: prefix + rest, st.sampled_from(PREFIXES), st.binary(max_size=160))


def test_expected_decoders_are_discovered():
    expected = {
        "header.decode_packet", "sack.decode_sack", "tunnel_frames.classify_datagram",
        "tunnel_frames.decode_plaintext", "tunnel_frames.decode_sealed",
        "tunnel_frames.decode_key_exchange", "tunnel_frames.decode_punch",
        "beacon_messages.decode_beacon", "registry_messages.decode_registry_body",
        "local_api.decode_body",
    }
    assert expected <= set(DECODERS)


@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(max_examples=150, deadline=None)
@given(data=inputs)
def test_any_bytes_value_or_malformed(name, data):
    for view in buffer_kinds(data):
        decode_or_malformed(DECODERS[name], view)


@pytest.mark.parametrize("factory", [FrameDecoder, RegistryFrameDecoder])
@settings(max_examples=150, deadline=None)
@given(data=inputs, cut_points=cuts)
def test_stream_decoders_any_chunking(factory, data, cut_points):
    stream = len(data).to_bytes(4, "big") + data + data[:7]
    decoder = factory()
    decode_or_malformed(lambda chunks: [decoder.feed(c) for c in chunks], split_at(stream, cut_points))
