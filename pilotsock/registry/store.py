# SPDX-License-Identifier: Apache-2.0
"""Registry state in SQLite (``wire.md`` §10.4–§10.6).

Where it sits: ``RegistryService`` (sans-IO request handling) → **store** → one SQLite file.

The Go registry keeps its state in memory and flushes a JSON snapshot (§10.6); pilotsock keeps
the same data in SQLite instead, in WAL mode, and the service wraps every request in one
``transaction()`` so a request is applied completely or not at all.

Invariants:

- Node IDs come from the ``next_node_id`` counter, start at 1 and are never reused.
- A node row is never deleted: reaping or ``deregister`` only clears ``alive`` and the hostname,
  so the public-key index (kept after reaping) can give the same ID back on re-registration.
- A hostname belongs to at most one node (unique index; ``NULL`` = none).
- Trust pairs are stored as the text ``"min:max"`` and survive reaping.
- Times are unix seconds supplied by the caller; the store never reads a clock.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    node_id     INTEGER PRIMARY KEY,
    owner       TEXT,
    public_key  TEXT NOT NULL,
    real_addr   TEXT NOT NULL DEFAULT '',
    is_public   INTEGER NOT NULL DEFAULT 0,
    last_seen   REAL NOT NULL DEFAULT 0,
    hostname    TEXT UNIQUE,
    tags        TEXT NOT NULL DEFAULT '[]',
    polo_score  INTEGER NOT NULL DEFAULT 0,
    task_exec   INTEGER NOT NULL DEFAULT 0,
    alive       INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS nodes_owner ON nodes(owner);
CREATE INDEX IF NOT EXISTS nodes_alive_seen ON nodes(alive, last_seen);
CREATE TABLE IF NOT EXISTS public_key_index (
    public_key  TEXT PRIMARY KEY,
    node_id     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name        TEXT PRIMARY KEY,
    value       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS trust_pairs (
    pair        TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS handshake_requests (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    to_node_id    INTEGER NOT NULL,
    from_node_id  INTEGER NOT NULL,
    justification TEXT NOT NULL,
    timestamp     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS handshake_requests_to ON handshake_requests(to_node_id);
CREATE TABLE IF NOT EXISTS handshake_responses (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    to_node_id    INTEGER NOT NULL,
    from_node_id  INTEGER NOT NULL,
    accept        INTEGER NOT NULL,
    timestamp     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS handshake_responses_to ON handshake_responses(to_node_id);
CREATE TABLE IF NOT EXISTS beacons (
    beacon_id   INTEGER PRIMARY KEY,
    addr        TEXT NOT NULL,
    expires_at  REAL NOT NULL
);
"""

_NODE_COLUMNS = (
    "node_id, owner, public_key, real_addr, is_public, last_seen, hostname, tags, polo_score,"
    " task_exec, alive"
)


@dataclass(slots=True)
class NodeRecord:
    """One row of ``nodes``. ``alive`` is False once the node was reaped or deregistered."""

    node_id: int
    public_key: str
    owner: str = ""
    real_addr: str = ""
    is_public: bool = False
    last_seen: float = 0.0
    hostname: str | None = None
    tags: tuple[str, ...] = ()
    polo_score: int = 0
    task_exec: bool = False
    alive: bool = True


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    from_node_id: int
    justification: str
    timestamp: int


@dataclass(frozen=True, slots=True)
class HandshakeResponse:
    from_node_id: int
    accept: bool
    timestamp: int


def trust_pair_key(node_a: int, node_b: int) -> str:
    """The order-independent key of a trust pair, ``"min:max"`` (§10.5)."""
    low, high = sorted((node_a, node_b))
    return f"{low}:{high}"


def _record_from_row(row: tuple[object, ...]) -> NodeRecord:
    (
        node_id,
        owner,
        public_key,
        real_addr,
        is_public,
        last_seen,
        hostname,
        tags,
        polo_score,
        task_exec,
        alive,
    ) = row
    try:
        decoded = json.loads(str(tags))
    except ValueError:
        decoded = []
    tag_tuple = tuple(t for t in decoded if isinstance(t, str)) if isinstance(decoded, list) else ()
    return NodeRecord(
        node_id=int(node_id),  # type: ignore[call-overload]
        public_key=str(public_key),
        owner=str(owner or ""),
        real_addr=str(real_addr or ""),
        is_public=bool(is_public),
        last_seen=float(last_seen),  # type: ignore[arg-type]
        hostname=None if hostname is None else str(hostname),
        tags=tag_tuple,
        polo_score=int(polo_score),  # type: ignore[call-overload]
        task_exec=bool(task_exec),
        alive=bool(alive),
    )


class RegistryStore:
    """SQLite-backed registry state. One instance per database connection; not thread-safe.

    Args:
        path: database file, or ``":memory:"`` for a throw-away store (tests).

    Every mutating call must happen inside ``transaction()``; reads may happen anywhere.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per request.
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._in_transaction = False
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL survives a process crash; only a power loss can lose the last commits.
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Checkpoint and close. Safe to call twice."""
        with contextlib.suppress(sqlite3.ProgrammingError):
            self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the body as one atomic SQLite transaction (rolled back on any exception).

        Nested use joins the outer transaction.
        """
        if self._in_transaction:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._in_transaction = False

    # -- counters --------------------------------------------------------------------------

    def allocate_node_id(self) -> int:
        """Take the next node ID (1, 2, 3, …; never reused, survives restarts)."""
        row = self._db.execute("SELECT value FROM counters WHERE name = 'next_node_id'").fetchone()
        node_id = int(row[0]) if row else 1
        self._db.execute(
            "INSERT INTO counters(name, value) VALUES ('next_node_id', ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (node_id + 1,),
        )
        return node_id

    # -- nodes -----------------------------------------------------------------------------

    def get_node(self, node_id: int) -> NodeRecord | None:
        """Any node ever allocated, alive or not."""
        row = self._db.execute(f"SELECT {_NODE_COLUMNS} FROM nodes WHERE node_id = ?", (node_id,)).fetchone()
        return None if row is None else _record_from_row(row)

    def get_alive_node(self, node_id: int) -> NodeRecord | None:
        record = self.get_node(node_id)
        return record if record is not None and record.alive else None

    def save_node(self, record: NodeRecord) -> None:
        """Insert or replace a node row with exactly ``record``'s values."""
        self._db.execute(
            f"INSERT OR REPLACE INTO nodes ({_NODE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                record.node_id,
                record.owner or None,
                record.public_key,
                record.real_addr,
                int(record.is_public),
                record.last_seen,
                record.hostname,
                json.dumps(list(record.tags)),
                record.polo_score,
                int(record.task_exec),
                int(record.alive),
            ),
        )

    def node_id_for_owner(self, owner: str) -> int | None:
        row = self._db.execute(
            "SELECT node_id FROM nodes WHERE owner = ? ORDER BY node_id LIMIT 1", (owner,)
        ).fetchone()
        return None if row is None else int(row[0])

    def node_id_for_hostname(self, hostname: str) -> int | None:
        row = self._db.execute("SELECT node_id FROM nodes WHERE hostname = ?", (hostname,)).fetchone()
        return None if row is None else int(row[0])

    def count_alive(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM nodes WHERE alive = 1").fetchone()[0])

    def reap_nodes_seen_before(self, cutoff: float) -> list[int]:
        """Mark alive nodes whose ``last_seen`` is before ``cutoff`` as gone; return their IDs.

        A reaped node loses its hostname (and with it, its network membership); its key index
        entry, trust pairs and handshake inboxes are kept (§10.4).
        """
        rows = self._db.execute(
            "SELECT node_id FROM nodes WHERE alive = 1 AND last_seen < ? ORDER BY node_id",
            (cutoff,),
        ).fetchall()
        reaped = [int(row[0]) for row in rows]
        if reaped:
            self._db.execute(
                "UPDATE nodes SET alive = 0, hostname = NULL WHERE alive = 1 AND last_seen < ?",
                (cutoff,),
            )
        return reaped

    # -- public-key index ------------------------------------------------------------------

    def node_id_for_key(self, public_key_b64: str) -> int | None:
        row = self._db.execute(
            "SELECT node_id FROM public_key_index WHERE public_key = ?", (public_key_b64,)
        ).fetchone()
        return None if row is None else int(row[0])

    def index_key(self, public_key_b64: str, node_id: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO public_key_index(public_key, node_id) VALUES (?, ?)",
            (public_key_b64, node_id),
        )

    def unindex_key(self, public_key_b64: str) -> None:
        self._db.execute("DELETE FROM public_key_index WHERE public_key = ?", (public_key_b64,))

    # -- trust pairs -----------------------------------------------------------------------

    def add_trust(self, node_a: int, node_b: int) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO trust_pairs(pair) VALUES (?)", (trust_pair_key(node_a, node_b),)
        )

    def remove_trust(self, node_a: int, node_b: int) -> bool:
        """Remove a pair; return False if there was none."""
        cursor = self._db.execute("DELETE FROM trust_pairs WHERE pair = ?", (trust_pair_key(node_a, node_b),))
        return cursor.rowcount > 0

    def has_trust(self, node_a: int, node_b: int) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM trust_pairs WHERE pair = ?", (trust_pair_key(node_a, node_b),)
        ).fetchone()
        return row is not None

    def trust_pairs(self) -> list[str]:
        return [str(row[0]) for row in self._db.execute("SELECT pair FROM trust_pairs ORDER BY pair")]

    # -- handshake inboxes -----------------------------------------------------------------

    def count_handshake_requests(self, to_node_id: int) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM handshake_requests WHERE to_node_id = ?", (to_node_id,)
        ).fetchone()
        return int(row[0])

    def has_handshake_request(self, to_node_id: int, from_node_id: int) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM handshake_requests WHERE to_node_id = ? AND from_node_id = ?",
            (to_node_id, from_node_id),
        ).fetchone()
        return row is not None

    def add_handshake_request(
        self, to_node_id: int, from_node_id: int, justification: str, timestamp: int
    ) -> None:
        self._db.execute(
            "INSERT INTO handshake_requests(to_node_id, from_node_id, justification, timestamp) "
            "VALUES (?, ?, ?, ?)",
            (to_node_id, from_node_id, justification, timestamp),
        )

    def take_handshake_requests(self, to_node_id: int) -> list[HandshakeRequest]:
        """Return and delete every pending request addressed to ``to_node_id`` (oldest first)."""
        rows = self._db.execute(
            "SELECT from_node_id, justification, timestamp FROM handshake_requests "
            "WHERE to_node_id = ? ORDER BY seq",
            (to_node_id,),
        ).fetchall()
        self._db.execute("DELETE FROM handshake_requests WHERE to_node_id = ?", (to_node_id,))
        return [HandshakeRequest(int(a), str(b), int(c)) for a, b, c in rows]

    def add_handshake_response(
        self, to_node_id: int, from_node_id: int, accept: bool, timestamp: int, *, limit: int
    ) -> None:
        """Append a response to ``to_node_id``'s inbox, dropping the oldest beyond ``limit``."""
        self._db.execute(
            "INSERT INTO handshake_responses(to_node_id, from_node_id, accept, timestamp) "
            "VALUES (?, ?, ?, ?)",
            (to_node_id, from_node_id, int(accept), timestamp),
        )
        self._db.execute(
            "DELETE FROM handshake_responses WHERE to_node_id = ? AND seq NOT IN ("
            "SELECT seq FROM handshake_responses WHERE to_node_id = ? ORDER BY seq DESC LIMIT ?)",
            (to_node_id, to_node_id, limit),
        )

    def take_handshake_responses(self, to_node_id: int) -> list[HandshakeResponse]:
        rows = self._db.execute(
            "SELECT from_node_id, accept, timestamp FROM handshake_responses "
            "WHERE to_node_id = ? ORDER BY seq",
            (to_node_id,),
        ).fetchall()
        self._db.execute("DELETE FROM handshake_responses WHERE to_node_id = ?", (to_node_id,))
        return [HandshakeResponse(int(a), bool(b), int(c)) for a, b, c in rows]

    # -- beacons ---------------------------------------------------------------------------

    def put_beacon(self, beacon_id: int, addr: str, expires_at: float) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO beacons(beacon_id, addr, expires_at) VALUES (?, ?, ?)",
            (beacon_id, addr, expires_at),
        )

    def live_beacons(self, now: float) -> list[tuple[int, str]]:
        rows = self._db.execute(
            "SELECT beacon_id, addr FROM beacons WHERE expires_at > ? ORDER BY beacon_id", (now,)
        ).fetchall()
        return [(int(a), str(b)) for a, b in rows]

    def expire_beacons(self, now: float) -> int:
        cursor = self._db.execute("DELETE FROM beacons WHERE expires_at <= ?", (now,))
        return cursor.rowcount
