"""The peer table: PILA exchange, queueing before a key, lost replies, bounds on garbage."""

import os

from pilotsock.config import TunnelConfig
from pilotsock.identity import Identity
from pilotsock.tunnel.peers import NeedEndpoint, NeedIdentity, PeerPath, PeerTable, SessionReady
from pilotsock.wire.tunnel_frames import (
    FrameKind,
    KeyExchange,
    classify_datagram,
    decode_key_exchange,
    decode_sealed,
    encode_authenticated_key_exchange,
    encode_key_exchange,
)

PATH_A, PATH_B = PeerPath(("127.0.0.1", 1001)), PeerPath(("127.0.0.1", 1002))


def _table(node: int, identity: Identity) -> PeerTable:
    return PeerTable(TunnelConfig(), own_node=node, identity_public_key=identity.public_key, sign=identity.sign)


def _deliver(table: PeerTable, frames: list[tuple[bytes, PeerPath]], source: PeerPath, now: float) -> list[bytes]:
    opened = []
    for frame, _path in frames:
        kind = classify_datagram(frame)
        if kind in (FrameKind.PILA, FrameKind.PILK):
            table.on_key_exchange(decode_key_exchange(frame), source, now)
        elif kind is FrameKind.PILS:
            plaintext = table.open(decode_sealed(frame), source, now)
            if plaintext is not None:
                opened.append(plaintext)
    return opened


def _setup() -> tuple[PeerTable, PeerTable, Identity, Identity]:
    ia, ib = Identity.generate(), Identity.generate()
    return _table(1, ia), _table(2, ib), ia, ib


def test_packets_wait_for_the_key_and_are_never_sent_in_plaintext() -> None:
    a, b, ia, ib = _setup()
    assert a.seal(2, b"SYN", 0.0) is None
    assert a.pop_events() == [NeedIdentity(2), NeedEndpoint(2)]
    assert a.datagrams_to_send() == []  # no path yet: nothing at all goes out
    a.on_identity(2, ib.public_key, 0.0)
    a.set_path(2, PATH_B, 0.0)
    out = a.datagrams_to_send()
    assert [classify_datagram(f) for f, _ in out] == [FrameKind.PILA]
    _deliver(b, out, PATH_A, 0.1)
    assert b.pop_events() == [NeedIdentity(1)]
    b.on_identity(1, ia.public_key, 0.1)
    assert b.pop_events() == [SessionReady(1)]
    reply = b.datagrams_to_send()
    assert _deliver(a, reply, PATH_B, 0.2) == []
    flushed = a.datagrams_to_send()
    kinds = [classify_datagram(f) for f, _ in flushed]
    assert FrameKind.PILS in kinds and FrameKind.PILT not in kinds
    assert _deliver(b, flushed, PATH_A, 0.3) == [b"SYN"]
    frame, path = b.seal(1, b"SYN-ACK", 0.4)  # type: ignore[misc]
    assert path == PATH_A  # reply-on-ingress
    assert _deliver(a, [(frame, path)], PATH_B, 0.4) == [b"SYN-ACK"]


def test_lost_reply_pila_is_answered_again_until_the_peer_proves_it_has_our_key() -> None:
    a, b, ia, ib = _setup()
    a.on_identity(2, ib.public_key, 0.0)
    b.on_identity(1, ia.public_key, 0.0)
    a.seal(2, b"SYN", 0.0)
    a.pop_events()
    a.set_path(2, PATH_B, 0.0)
    _deliver(b, a.datagrams_to_send(), PATH_A, 0.0)
    b.datagrams_to_send()  # b's reply PILA is lost
    a.retry_key_exchange(2, 1.0)
    retry = a.datagrams_to_send()
    assert [classify_datagram(f) for f, _ in retry] == [FrameKind.PILA]
    _deliver(b, retry, PATH_A, 1.0)
    again = b.datagrams_to_send()
    assert [classify_datagram(f) for f, _ in again] == [FrameKind.PILA]  # same key, still answered
    _deliver(a, again, PATH_B, 1.1)
    _deliver(b, a.datagrams_to_send(), PATH_A, 1.2)
    # Once b decrypted a PILS from a, same-key PILAs get no more answers (no redundant KX).
    _deliver(b, [(a.own_key_exchange(), PATH_A)], PATH_A, 5.0)
    assert b.datagrams_to_send() == []


def test_pilk_and_forged_pila_are_rejected() -> None:
    a, b, ia, ib = _setup()
    b.on_identity(1, ia.public_key, 0.0)
    pilk = encode_key_exchange(1, a.key_pair.public_key)
    _deliver(b, [(pilk, PATH_A)], PATH_A, 0.0)
    assert b.counters["tunnel.pilk_rejected"] == 1
    mallory = Identity.generate()
    forged = encode_authenticated_key_exchange(1, os.urandom(32), mallory.public_key, mallory.sign(b"x" * 40))
    _deliver(b, [(forged, PATH_A)], PATH_A, 0.0)
    _deliver(b, [(forged, PATH_A)], PATH_A, 2.0)  # after the re-fetch the key still differs
    b.on_identity(1, ia.public_key, 2.0)
    assert b.counters.get("tunnel.kx_key_mismatch", 0) == 1
    assert not b.has_session(1)


def test_garbage_senders_cannot_grow_state() -> None:
    _, b, _, _ = _setup()
    for node in range(10, 5010):
        kx = KeyExchange(node, os.urandom(32), os.urandom(32), os.urandom(64), True)
        b.on_key_exchange(kx, PATH_A, 0.0)
        frame = b"PILS" + node.to_bytes(4, "big") + os.urandom(60)
        b.open(decode_sealed(frame), PATH_A, 0.0)
    assert len(b.peers) == 0
    assert len(b._held) <= 256 and len(b._recovery_sent_at) <= 256
    assert len([e for e in b.pop_events() if isinstance(e, NeedIdentity)]) <= 256


def test_pending_queue_is_bounded_and_drops_oldest() -> None:
    a, _, _, _ = _setup()
    for index in range(100):
        a.seal(2, bytes([index]), 0.0)
    assert len(a.peers[2].pending) == 64
    assert a.peers[2].pending[0] == bytes([36])
    assert a.counters["tunnel.pending_dropped"] == 36
