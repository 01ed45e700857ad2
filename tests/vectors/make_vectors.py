# SPDX-License-Identifier: Apache-2.0
"""Regenerate the JSON golden vectors in this directory (see README.md for their origin).

Deliberately independent of ``pilotsock``: only ``struct``, ``zlib``, ``hashlib`` and
``cryptography`` are used, so the vectors check the codecs instead of echoing them. The
``wire.md`` §17 values are written out literally below and asserted against the computation, so a
regeneration can never silently change them.

    python tests/vectors/make_vectors.py          # rewrite the *.json files
    python tests/vectors/make_vectors.py --check  # exit 1 if a file would change
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
import zlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HERE = Path(__file__).resolve().parent
HEADER = struct.Struct(">BBHHIHIHHIIHI")

# --- literal values from wire.md §17 (do not edit; they are the reference) ----------------------
SPEC_SYN_HEX = (
    "11 01 00 00 00 00 00 00 00 01 00 00 00 00 00 02 c0 00 03 e8"
    " 00 00 00 00 00 00 00 00 02 00 14 5e d8 74"
)
SPEC_DATA_HEX = (
    "12 01 00 05 00 00 00 00 00 01 00 00 00 00 00 02 c0 00 03 e8"
    " 00 00 00 01 00 00 00 01 01 f6 5e e8 72 c8 68 65 6c 6c 6f"
)
SPEC_SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
SPEC_TUNNEL_D01 = "3e765a2f49fe2a9185dd5d57c08a3525060d2d2c2b2a356fadef25f614d38662"
SPEC_TUNNEL_SNAPSHOT = "7fba3471bc8efe5a218c59651ad860926646b44c842bb2747ad11d976d60c50e"
SPEC_SECURE_D01 = "cddb817500383058931b912ed913882f4a6f0facbe47dd907100dac3913a2dbf"
SPEC_SECURE_SNAPSHOT = "b55aeee28f960d0c20cb8a1b955983e4162fa9ba1edabf539f26c426aea92927"
SPEC_PILS_D01 = (
    "50494c53 00000001 a1b2c3d4 0000000000000001"
    " 0443bba68eebfd923233a502903a7c30a9e289a73d0c94e7cca9e98eed540fd163a1"
    " b5b13d992ea53c306e479af3bf448922"
)
SPEC_PILS_SNAPSHOT = (
    "50494c53 00000001 a1b2c3d4 0000000000000001"
    " 56dfe3f8d3d878e2a8d87fc3412afca4dfc38b354ce7f0e1ecd34717b908c5461fcc"
    " 585a0951448836deeed10cb8a3de519c"
)

# RFC 7748 §6.1 (X25519) and RFC 8032 §7.1 TEST 1 (Ed25519) key material.
RFC7748_ALICE_PRIVATE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
RFC7748_ALICE_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
RFC7748_BOB_PRIVATE = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
RFC7748_BOB_PUBLIC = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
RFC8032_TEST1_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC8032_TEST1_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"


def unhex(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def packet(flags: int, protocol: int, src: tuple[int, int], dst: tuple[int, int], src_port: int,
           dst_port: int, seq: int, ack: int, window: int, payload: bytes = b"") -> bytes:
    header = HEADER.pack(0x10 | flags, protocol, len(payload), src[0], src[1], dst[0], dst[1],
                         src_port, dst_port, seq, ack, window, 0)
    crc = zlib.crc32(header + payload) & 0xFFFFFFFF
    return header[:30] + struct.pack(">I", crc) + payload


def packet_vector(name: str, origin: str, **fields: object) -> dict[str, object]:
    payload = fields.pop("payload", b"")
    assert isinstance(payload, bytes)
    raw = packet(fields["flags"], fields["protocol"], (fields["src_network"], fields["src_node"]),  # type: ignore[arg-type]
                 (fields["dst_network"], fields["dst_node"]), fields["src_port"],  # type: ignore[arg-type]
                 fields["dst_port"], fields["seq"], fields["ack"], fields["window_units"], payload)  # type: ignore[arg-type]
    return {"name": name, "origin": origin, **fields, "version": 1, "payload_hex": payload.hex(),
            "hex": raw.hex()}


def build_packets() -> dict[str, object]:
    ends = {"src_network": 0, "src_node": 1, "dst_network": 0, "dst_node": 2,
            "src_port": 49152, "dst_port": 1000}
    vectors = [
        packet_vector("spec17_syn", "wire.md §17 / D01 App. B", flags=0x1, protocol=1, **ends,
                      seq=0, ack=0, window_units=512),
        packet_vector("spec17_data_hello", "wire.md §17 / D01 App. B", flags=0x2, protocol=1,
                      **ends, seq=1, ack=1, window_units=502, payload=b"hello"),
        packet_vector("corpus_syn", "Go golden corpus shape l1-packet-syn", flags=0x1, protocol=1,
                      **ends, seq=100, ack=0, window_units=512),
        packet_vector("corpus_data", "Go golden corpus shape l1-packet-data", flags=0x2,
                      protocol=1, **ends, seq=101, ack=200, window_units=512, payload=b"hello"),
        packet_vector("corpus_fin_ack", "Go golden corpus shape l1-packet-fin", flags=0x6,
                      protocol=1, **ends, seq=200, ack=101, window_units=0),
        packet_vector("corpus_rst", "Go golden corpus shape l1-packet-rst", flags=0x8, protocol=1,
                      **ends, seq=300, ack=0, window_units=0),
        packet_vector("corpus_datagram", "Go golden corpus shape l1-packet-datagram", flags=0x0,
                      protocol=2, **ends, seq=0, ack=0, window_units=0, payload=b"hello, pilot"),
        packet_vector("corpus_sack_ack", "Go golden corpus shape l7-sack-payload, inside an ACK",
                      flags=0x2, protocol=1, **ends, seq=101, ack=1500, window_units=512,
                      payload=b"SACK\x01" + struct.pack(">II", 1500, 1600)),
    ]
    assert vectors[0]["hex"] == SPEC_SYN_HEX.replace(" ", ""), "wire.md §17 SYN mismatch"
    assert vectors[1]["hex"] == SPEC_DATA_HEX.replace(" ", ""), "wire.md §17 data mismatch"
    return {"description": "Pilot packets (wire.md §4); see README.md", "vectors": vectors}


def build_sack() -> dict[str, object]:
    def sack(blocks: list[tuple[int, int]]) -> str:
        return (b"SACK" + bytes((len(blocks),))
                + b"".join(struct.pack(">II", left, right) for left, right in blocks)).hex()

    cases = [
        ("corpus_one_block", "Go golden corpus shape l7-sack-payload", [(1500, 1600)]),
        ("four_blocks", "transport.md §5 (maximum block count)",
         [(5000, 6000), (1500, 1600), (3000, 3400), (4294967000, 4294967295)]),
    ]
    return {"description": "In-band SACK payloads (transport.md §5)",
            "vectors": [{"name": n, "origin": o, "blocks": [list(b) for b in bl], "hex": sack(bl)}
                        for n, o, bl in cases]}


def build_tunnel() -> dict[str, object]:
    alice = X25519PrivateKey.from_private_bytes(unhex(RFC7748_ALICE_PRIVATE))
    bob = X25519PrivateKey.from_private_bytes(unhex(RFC7748_BOB_PRIVATE))
    raw = (Encoding.Raw, PublicFormat.Raw)
    assert alice.public_key().public_bytes(*raw).hex() == RFC7748_ALICE_PUBLIC
    assert bob.public_key().public_bytes(*raw).hex() == RFC7748_BOB_PUBLIC
    shared = alice.exchange(bob.public_key())
    assert shared.hex() == SPEC_SHARED

    def hkdf(info: bytes) -> bytes:
        return HKDF(SHA256(), length=32, salt=None, info=info).derive(shared)

    assert hkdf(b"pilot-tunnel-v1").hex() == SPEC_TUNNEL_D01
    assert hkdf(b"pilot-secure-v1").hex() == SPEC_SECURE_D01
    assert hashlib.sha256(b"pilot-tunnel-v1:" + shared).hexdigest() == SPEC_TUNNEL_SNAPSHOT
    assert hashlib.sha256(b"pilot-secure-v1:" + shared).hexdigest() == SPEC_SECURE_SNAPSHOT

    syn = unhex(SPEC_SYN_HEX)
    prefix = b"PILS" + struct.pack(">I", 1) + unhex("a1b2c3d4") + struct.pack(">Q", 1)
    nonce = prefix[8:20]
    d01 = prefix + AESGCM(unhex(SPEC_TUNNEL_D01)).encrypt(nonce, syn, struct.pack(">I", 1))
    snap = prefix + AESGCM(unhex(SPEC_TUNNEL_SNAPSHOT)).encrypt(nonce, syn, None)
    assert d01.hex() == SPEC_PILS_D01.replace(" ", ""), "wire.md §17 PILS (D01) mismatch"
    assert snap.hex() == SPEC_PILS_SNAPSHOT.replace(" ", ""), "wire.md §17 PILS (snapshot) mismatch"

    # Corpus-shaped L6 frame: plaintext "hello" under a 0x42-repeating key, AAD = sender.
    l6_prefix = b"PILS" + struct.pack(">I", 1) + unhex("01020304") + struct.pack(">Q", 1)
    l6 = l6_prefix + AESGCM(b"\x42" * 32).encrypt(l6_prefix[8:20], b"hello", struct.pack(">I", 1))

    identity = Ed25519PrivateKey.from_private_bytes(unhex(RFC8032_TEST1_SEED))
    identity_public = identity.public_key().public_bytes(*raw)
    assert identity_public.hex() == RFC8032_TEST1_PUBLIC
    alice_public = unhex(RFC7748_ALICE_PUBLIC)
    signed_5 = b"auth" + struct.pack(">I", 5) + alice_public
    signed_1 = b"auth" + struct.pack(">I", 1) + alice_public
    signature = identity.sign(signed_1)
    pila = b"PILA" + struct.pack(">I", 1) + alice_public + identity_public + signature
    pilk = b"PILK" + struct.pack(">I", 1) + alice_public

    return {
        "description": "Tunnel KDF, AEAD and key-exchange vectors (wire.md §5-§7, §17); see README.md",
        "x25519": {
            "origin": "RFC 7748 §6.1",
            "alice_private": RFC7748_ALICE_PRIVATE, "alice_public": RFC7748_ALICE_PUBLIC,
            "bob_private": RFC7748_BOB_PRIVATE, "bob_public": RFC7748_BOB_PUBLIC,
            "shared": SPEC_SHARED,
        },
        "kdf": [
            {"name": "tunnel_d01", "origin": "wire.md §17", "construction": "hkdf",
             "info": "pilot-tunnel-v1", "key": SPEC_TUNNEL_D01},
            {"name": "secure_d01", "origin": "wire.md §17", "construction": "hkdf",
             "info": "pilot-secure-v1", "key": SPEC_SECURE_D01},
            {"name": "tunnel_snapshot", "origin": "wire.md §17 / §15 item 1",
             "construction": "sha256-prefix", "info": "pilot-tunnel-v1:", "key": SPEC_TUNNEL_SNAPSHOT},
            {"name": "secure_snapshot", "origin": "wire.md §17 / §15 item 13",
             "construction": "sha256-prefix", "info": "pilot-secure-v1:", "key": SPEC_SECURE_SNAPSHOT},
        ],
        "pils": [
            {"name": "spec17_syn_d01", "origin": "wire.md §17", "key": SPEC_TUNNEL_D01,
             "sender": 1, "nonce_prefix": "a1b2c3d4", "counter": 1, "aad": "00000001",
             "plaintext": syn.hex(), "hex": d01.hex()},
            {"name": "spec17_syn_snapshot", "origin": "wire.md §17 / §15 items 1-2",
             "key": SPEC_TUNNEL_SNAPSHOT, "sender": 1, "nonce_prefix": "a1b2c3d4", "counter": 1,
             "aad": "", "plaintext": syn.hex(), "hex": snap.hex()},
            {"name": "corpus_l6_hello", "origin": "Go golden corpus shape l6-encrypted-frame",
             "key": "42" * 32, "sender": 1, "nonce_prefix": "01020304", "counter": 1,
             "aad": "00000001", "plaintext": b"hello".hex(), "hex": l6.hex()},
        ],
        "pila_signed_message": {
            "origin": "wire.md §6.2 / §17", "sender": 5, "x25519_public": RFC7748_ALICE_PUBLIC,
            "hex": signed_5.hex(),
        },
        "pila": {
            "origin": "Go golden corpus shape l5-key-exchange-auth; RFC 8032 TEST 1 identity",
            "sender": 1, "x25519_public": RFC7748_ALICE_PUBLIC,
            "ed25519_seed": RFC8032_TEST1_SEED, "ed25519_public": RFC8032_TEST1_PUBLIC,
            "signature": signature.hex(), "hex": pila.hex(),
        },
        "pilk": {"origin": "Go golden corpus shape l5-key-exchange-unauth", "sender": 1,
                 "x25519_public": RFC7748_ALICE_PUBLIC, "hex": pilk.hex()},
        "pilp": [
            {"name": "go_bare", "origin": "Go golden corpus shape l4-punch-pilp", "sender": None,
             "hex": b"PILP".hex()},
            {"name": "d01", "origin": "wire.md §5 (D01 form, sent by pilotsock)", "sender": 1,
             "hex": (b"PILP" + struct.pack(">I", 1)).hex()},
        ],
    }


def build_beacon(syn: bytes) -> dict[str, object]:
    def ip(octets: bytes) -> bytes:
        return bytes((len(octets),)) + octets

    v4 = bytes((203, 0, 113, 7))
    v6 = unhex("20010db8000000000000000000000007")
    punch = bytes((198, 51, 100, 9))
    vectors = [
        {"name": "discover", "origin": "corpus l4-msg-discover", "type": "Discover",
         "fields": {"node_id": 42}, "hex": (b"\x01" + struct.pack(">I", 42)).hex()},
        {"name": "discover_stun", "origin": "wire.md §9 (STUN discovery uses node 0)",
         "type": "Discover", "fields": {"node_id": 0}, "hex": (b"\x01" + bytes(4)).hex()},
        {"name": "discover_reply_v4", "origin": "corpus l4-msg-discover-reply-v4",
         "type": "DiscoverReply", "fields": {"host": "203.0.113.7", "port": 4000},
         "hex": (b"\x02" + ip(v4) + struct.pack(">H", 4000)).hex()},
        {"name": "discover_reply_v6", "origin": "corpus l4-msg-discover-reply-v6",
         "type": "DiscoverReply", "fields": {"host": "2001:db8::7", "port": 4000},
         "hex": (b"\x02" + ip(v6) + struct.pack(">H", 4000)).hex()},
        {"name": "punch_request", "origin": "corpus l4-msg-punch-request", "type": "PunchRequest",
         "fields": {"requester": 1, "target": 2}, "hex": (b"\x03" + struct.pack(">II", 1, 2)).hex()},
        {"name": "punch_command", "origin": "corpus l4-msg-punch-command", "type": "PunchCommand",
         "fields": {"host": "198.51.100.9", "port": 9001},
         "hex": (b"\x04" + ip(punch) + struct.pack(">H", 9001)).hex()},
        {"name": "relay", "origin": "corpus l4-msg-relay (inner = wire.md §17 SYN)",
         "type": "Relay", "fields": {"sender": 1, "destination": 2, "inner": syn.hex()},
         "hex": (b"\x05" + struct.pack(">II", 1, 2) + syn).hex()},
        {"name": "relay_deliver", "origin": "corpus l4-msg-relay-deliver (inner = wire.md §17 SYN)",
         "type": "RelayDeliver", "fields": {"sender": 1, "inner": syn.hex()},
         "hex": (b"\x06" + struct.pack(">I", 1) + syn).hex()},
        {"name": "sync", "origin": "corpus l4-msg-sync", "type": "Sync",
         "fields": {"beacon_id": 7, "node_ids": [1, 2]},
         "hex": (b"\x07" + struct.pack(">IHII", 7, 2, 1, 2)).hex()},
    ]
    return {"description": "Beacon messages 0x01-0x07 (wire.md §9); see README.md",
            "vectors": vectors}


def build_framing() -> dict[str, object]:
    heartbeat = json.dumps({"type": "heartbeat", "node_id": 5, "signature": "c2ln"},
                           separators=(",", ":")).encode()
    go_error = b'{"type":"error","error":"request failed"}'
    spaced = b'{ "type" : "lookup_ok", "node_id": 5, "networks": [0], "public": false }'
    info = bytes.fromhex("81a26f70a4696e666f")  # msgpack {"op": "info"}
    return {
        "description": "Stream framings: registry [u32 len][JSON] (wire.md §10.1) and local API "
                       "[u32 len][msgpack map] (socket-design.md); see README.md",
        "registry": [
            {"name": "heartbeat_request", "origin": "wire.md §10.1/§10.3 (project encoder output)",
             "message": {"type": "heartbeat", "node_id": 5, "signature": "c2ln"},
             "hex": (struct.pack(">I", len(heartbeat)) + heartbeat).hex(), "canonical": True},
            {"name": "go_generic_error", "origin": "wire.md §10.1 (every handler error)",
             "message": {"type": "error", "error": "request failed"},
             "hex": (struct.pack(">I", len(go_error)) + go_error).hex(), "canonical": True},
            {"name": "go_spacing", "origin": "wire.md §10.1 (decoder must accept any JSON spacing)",
             "message": {"type": "lookup_ok", "node_id": 5, "networks": [0], "public": False},
             "hex": (struct.pack(">I", len(spaced)) + spaced).hex(), "canonical": False},
        ],
        "challenges": [
            {"origin": "wire.md §10.2", "kind": "resolve", "args": [7, 5], "text": "resolve:7:5"},
            {"origin": "wire.md §10.2", "kind": "node", "args": ["heartbeat", 5], "text": "heartbeat:5"},
            {"origin": "wire.md §10.2", "kind": "node", "args": ["rotate", 5], "text": "rotate:5"},
            {"origin": "wire.md §10.2", "kind": "node", "args": ["set_hostname", 4294967295],
             "text": "set_hostname:4294967295"},
            {"origin": "wire.md §10.2", "kind": "pair", "args": ["report_trust", 5, 9],
             "text": "report_trust:5:9"},
            {"origin": "wire.md §10.2", "kind": "pair", "args": ["handshake", 5, 9],
             "text": "handshake:5:9"},
            {"origin": "wire.md §10.2", "kind": "pair", "args": ["respond", 9, 5], "text": "respond:9:5"},
            {"origin": "wire.md §10.2", "kind": "pair", "args": ["punch", 5, 9], "text": "punch:5:9"},
        ],
        "local_api": [
            {"name": "info_request", "origin": "socket-design.md local API (msgpack map)",
             "message": {"op": "info"}, "hex": (struct.pack(">I", len(info)) + info).hex()},
        ],
    }


def build_addresses() -> dict[str, object]:
    return {
        "description": "Virtual addresses (wire.md §2, socket-design.md §5)",
        "valid": [
            {"origin": "wire.md §2", "text": "0:0000.0000.002A", "network": 0, "node": 42,
             "alias": "0-0000-0000-002a.pilot"},
            {"origin": "wire.md §2", "text": "1:0001.F291.0004", "network": 1, "node": 0xF2910004,
             "alias": "1-0001-f291-0004.pilot"},
            {"origin": "wire.md §2", "text": "23:0017.0000.0001", "network": 23, "node": 1,
             "alias": "23-0017-0000-0001.pilot"},
            {"origin": "wire.md §2 (max)", "text": "65535:FFFF.FFFF.FFFF", "network": 65535,
             "node": 0xFFFFFFFF, "alias": "65535-ffff-ffff-ffff.pilot"},
            {"origin": "wire.md §2 (zero / wildcard)", "text": "0:0000.0000.0000", "network": 0,
             "node": 0, "alias": "0-0000-0000-0000.pilot"},
            {"origin": "socket-design.md §5", "text": "0:0000.0000.0005", "network": 0, "node": 5,
             "alias": "0-0000-0000-0005.pilot"},
        ],
        "accepted_non_canonical": [
            {"origin": "wire.md §2 rule 3 (hex is case-insensitive)", "text": "1:0001.f291.0004",
             "canonical": "1:0001.F291.0004"},
            {"origin": "wire.md §2 rule 2 (leading zeros allowed)", "text": "0001:0001.F291.0004",
             "canonical": "1:0001.F291.0004"},
            {"origin": "wire.md §2 rule 2", "text": "00:0000.0000.002a", "canonical": "0:0000.0000.002A"},
        ],
        "rejected": [
            {"origin": "wire.md §2 must-reject list", "text": t} for t in [
                "", "0", "0:0000", "0:0000.0000", "0:0000.0000.0000.0000", "0:000.0000.0000",
                "0:0000.000.0000", "0:0000.0000.000", "99999:0000.0000.0000", "99999:1869F.0000.0000",
                "65536:10000.0000.0000", "0:ZZZZ.0000.0000", "0:0000.ZZZZ.0000", "0:0000.0000.ZZZZ",
                "1:0000.0000.0001",
            ]
        ] + [
            {"origin": "wire.md §2 parsing rules 1-3 (project additions)", "text": t} for t in [
                ":0000.0000.0000", "-0:0000.0000.0000", "+1:0001.0000.0000", " 0:0000.0000.0000",
                "0:0000.0000.0000 ", "0:0000.0000.0000\n", "0x0:0000.0000.0000", "0:00000.0000.0000",
                "0:0000..0000", "0:0000.0000.", ".0:0000.0000.0000", "0:0000.0000.0000:1000",
                "0:0000.0000.0000:", "0::0000.0000.0000", "0:+000.0000.0000", "0:-000.0000.0000",
                "0:0x00.0000.0000", "0:0000.0000.00 0", "\u0660:0000.0000.0000", "0:\uff10000.0000.0000",
                "1e0:0001.0000.0000", "0-0000-0000-0005.pilot",
            ]
        ],
    }


def main() -> int:
    tunnel = build_tunnel()
    syn = unhex(SPEC_SYN_HEX)
    outputs = {
        "packets.json": build_packets(),
        "sack.json": build_sack(),
        "tunnel.json": tunnel,
        "beacon.json": build_beacon(syn),
        "framing.json": build_framing(),
        "addresses.json": build_addresses(),
    }
    check = "--check" in sys.argv
    changed = []
    for name, value in outputs.items():
        text = json.dumps(value, indent=2, ensure_ascii=False) + "\n"
        path = HERE / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        changed.append(name)
        if not check:
            path.write_text(text, encoding="utf-8")
    if changed:
        print(("would change: " if check else "wrote: ") + ", ".join(changed))
    return 1 if (check and changed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
