import os

import pytest

from pilotsock.tunnel.keys import KeyAgreementError, TunnelKeyPair, derive_tunnel_key
from pilotsock.tunnel.session import OpenFailure, TunnelSession
from pilotsock.wire.tunnel_frames import decode_sealed


def _pair() -> tuple[TunnelSession, TunnelSession]:
    a, b = TunnelKeyPair(), TunnelKeyPair()
    key_a = derive_tunnel_key(a.shared_secret(b.public_key))
    key_b = derive_tunnel_key(b.shared_secret(a.public_key))
    assert key_a == key_b
    one = TunnelSession(key_a, own_node=1, peer_node=2, peer_x25519=b.public_key, random_bytes=os.urandom)
    two = TunnelSession(key_b, own_node=2, peer_node=1, peer_x25519=a.public_key, random_bytes=os.urandom)
    return one, two


def test_seal_open_counter_starts_at_one_and_aad_is_sender() -> None:
    one, two = _pair()
    frame = one.seal(b"packet")
    sealed = decode_sealed(frame)
    assert sealed.sender == 1 and sealed.counter == 1 and len(frame) == 20 + 6 + 16
    assert two.open(sealed) == b"packet"
    with pytest.raises(OpenFailure) as replay:
        two.open(sealed)
    assert replay.value.reason == "tunnel.replay"
    # The same bytes claimed by another sender fail authentication (AAD = sender node ID).
    forged = bytearray(frame)
    forged[7] = 3
    with pytest.raises(OpenFailure):
        two.open(decode_sealed(bytes(forged)))


def test_new_prefix_only_after_authentication_and_old_prefix_retired() -> None:
    one, two = _pair()
    first = decode_sealed(one.seal(b"a"))
    assert two.open(first) == b"a"
    old_prefix = one.send_prefix
    one.send_prefix, one.send_counter = b"\x01\x02\x03\x04", 0  # a peer restarting its counter
    tampered = bytearray(one.seal(b"b"))
    tampered[-1] ^= 1
    with pytest.raises(OpenFailure):
        two.open(decode_sealed(bytes(tampered)))
    assert two.peer_prefix == old_prefix  # a forged frame never switches prefixes
    assert two.open(decode_sealed(one.seal(b"c"))) == b"c"
    assert two.peer_prefix == b"\x01\x02\x03\x04"
    one.send_prefix, one.send_counter = old_prefix, 5
    with pytest.raises(OpenFailure) as retired:
        two.open(decode_sealed(one.seal(b"d")))
    assert retired.value.reason == "tunnel.retired_prefix"


def test_low_order_point_rejected() -> None:
    with pytest.raises(KeyAgreementError):
        TunnelKeyPair().shared_secret(bytes(32))
