"""The paper service's journal: every message, decision and fill, append-only, crash-safe.

One SQLite database in WAL mode under ``BESTEX_HOME/paper/<session>.db``. The service is its
only writer; ``bestex kill`` and the monitoring side write control requests into it, which the
service polls (``PRAGMA data_version`` tells it cheaply that another connection wrote).

Crash safety: a state change is one transaction (the fill, the parent's new state, the event
and the ExecutionReport it produces, stamped with its sequence number), committed **before** the
message is written to the socket. WAL with ``synchronous=NORMAL`` keeps every committed
transaction through a ``kill -9`` of the process (only an OS crash or a power cut can lose the
last ones, which FULL would also keep at an fsync per commit). After a restart the service reads
back the working orders, positions, fills, sequence numbers, the kill switch and the feed's
position; a fill is keyed by ``(order_id, child)``, so a child can never be filled twice.

Tables: ``messages`` (every FIX message in and out, raw), ``sent`` (our outgoing messages by
sequence number, for ResendRequest), ``seqnums``, ``orders`` (each parent's current state as
JSON, rewritten on change), ``fills``, ``events`` (decisions, refusals, kills: append-only),
``control`` (requests from outside: kill, reset) and ``meta`` (the feed cursor, the model).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["Journal"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, wall_ns INTEGER NOT NULL,
    client TEXT, direction TEXT NOT NULL, msg_type TEXT, seq INTEGER, raw BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS sent (client TEXT NOT NULL, seq INTEGER NOT NULL, raw BLOB NOT NULL,
    PRIMARY KEY (client, seq));
CREATE TABLE IF NOT EXISTS seqnums (client TEXT PRIMARY KEY, next_in INTEGER NOT NULL,
    next_out INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, cl_ord_id TEXT NOT NULL,
    client TEXT, status TEXT NOT NULL, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clordids (client TEXT NOT NULL, cl_ord_id TEXT NOT NULL,
    order_id TEXT NOT NULL, PRIMARY KEY (client, cl_ord_id));
CREATE TABLE IF NOT EXISTS fills (exec_id TEXT PRIMARY KEY, order_id TEXT NOT NULL,
    child INTEGER NOT NULL, symbol TEXT NOT NULL, side INTEGER NOT NULL, qty REAL NOT NULL,
    px REAL NOT NULL, fee REAL NOT NULL, maker INTEGER NOT NULL, feed_ns INTEGER NOT NULL,
    wall_ns INTEGER NOT NULL, UNIQUE (order_id, child));
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, wall_ns INTEGER NOT NULL,
    feed_ns INTEGER, kind TEXT NOT NULL, order_id TEXT, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS control (id INTEGER PRIMARY KEY, wall_ns INTEGER NOT NULL,
    action TEXT NOT NULL, reason TEXT NOT NULL, who TEXT NOT NULL, applied_ns INTEGER);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _now() -> int:
    return time.time_ns()


class Journal:
    """The journal at ``path`` (created with its tables when new).

    Parameters
    ----------
    path : path-like
        The SQLite file (its folder is created).
    readonly : bool, default=False
        Open for reading only (the dashboard, tests, ``bestex kill`` reading the state).
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly:
            if not self.path.is_file():
                raise FileNotFoundError(f"no paper journal at {self.path}")
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                       isolation_level=None, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        self._depth = 0
        self._seen_version = self.data_version()

    def close(self) -> None:
        self.stop_checkpointer()
        self._db.close()

    def start_checkpointer(self, interval_s: float = 1.0) -> None:
        """Checkpoint the WAL from a thread of its own (its own connection, PASSIVE: it never
        blocks the writer) instead of inside the service's commits: SQLite's automatic
        checkpoint copies the log into the database, and syncs it, in whichever commit crosses
        1,000 pages, which put milliseconds into an acknowledgement now and then."""
        import threading

        if getattr(self, "_ckpt", None) is not None:
            return
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        stop = threading.Event()

        def run() -> None:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            try:
                while not stop.wait(interval_s):
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                db.close()

        t = threading.Thread(target=run, name="journal-checkpoint", daemon=True)
        t.start()
        self._ckpt = (t, stop)

    def stop_checkpointer(self) -> None:
        got = getattr(self, "_ckpt", None)
        if got is not None:
            got[1].set()
            got[0].join(timeout=10)
            self._ckpt = None
            self._db.execute("PRAGMA wal_autocheckpoint=1000")

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit (nested calls join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    def data_version(self) -> int:
        """Changes when another connection commits (SQLite's ``data_version``)."""
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def changed_elsewhere(self) -> bool:
        """Whether another connection wrote since the last call (cheap: no table read)."""
        v = self.data_version()
        changed, self._seen_version = v != self._seen_version, v
        return changed

    # ------------------------------------------------------------------ FIX session store
    def seqnums(self, client: str) -> tuple[int, int]:
        row = self._db.execute("SELECT next_in, next_out FROM seqnums WHERE client = ?",
                               (client,)).fetchone()
        return (1, 1) if row is None else (int(row[0]), int(row[1]))

    def set_seqnums(self, client: str, next_in: int, next_out: int) -> None:
        self._db.execute("INSERT INTO seqnums VALUES (?, ?, ?) ON CONFLICT (client) DO UPDATE "
                         "SET next_in = excluded.next_in, next_out = excluded.next_out",
                         (client, next_in, next_out))

    def save_sent(self, client: str, seq: int, raw: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO sent VALUES (?, ?, ?)", (client, seq, raw))

    def sent(self, client: str, begin: int, end: int) -> list[tuple[int, bytes]]:
        hi = end if end > 0 else 2**62
        return [(int(s), bytes(r)) for s, r in self._db.execute(
            "SELECT seq, raw FROM sent WHERE client = ? AND seq BETWEEN ? AND ? ORDER BY seq",
            (client, begin, hi))]

    def log_message(self, direction: str, client: str | None, raw: bytes,
                    msg_type: str | None = None, seq: int | None = None) -> None:
        self._db.execute("INSERT INTO messages (wall_ns, client, direction, msg_type, seq, raw) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (_now(), client, direction, msg_type, seq, raw))

    # ------------------------------------------------------------------ orders and fills
    def save_order(self, state: dict[str, Any]) -> None:
        """Write a parent order's current state (``order_id``, ``cl_ord_id``, ``client``,
        ``status`` and anything JSON can hold)."""
        self._db.execute(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?) ON CONFLICT (order_id) DO UPDATE SET "
            "cl_ord_id = excluded.cl_ord_id, status = excluded.status, state = excluded.state",
            (state["order_id"], state["cl_ord_id"], state.get("client"), state["status"],
             json.dumps(state, default=float)))

    def claim_cl_ord_id(self, client: str, cl_ord_id: str, order_id: str) -> bool:
        """Record that ``cl_ord_id`` names ``order_id``; False when the client used it before
        (a duplicate ClOrdID: FIX requires them unique per session day)."""
        cur = self._db.execute("INSERT OR IGNORE INTO clordids VALUES (?, ?, ?)",
                               (client, cl_ord_id, order_id))
        return cur.rowcount == 1

    def order_of(self, client: str, cl_ord_id: str) -> str | None:
        row = self._db.execute("SELECT order_id FROM clordids WHERE client = ? AND "
                               "cl_ord_id = ?", (client, cl_ord_id)).fetchone()
        return None if row is None else str(row[0])

    def orders(self) -> list[dict[str, Any]]:
        """Every parent's last journaled state, in the order they arrived."""
        return [json.loads(s) for (s,) in self._db.execute(
            "SELECT state FROM orders ORDER BY rowid")]

    def add_fill(self, fill: dict[str, Any]) -> bool:
        """Insert a fill; False when that child of that order was already filled."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO fills VALUES (:exec_id, :order_id, :child, :symbol, :side, "
            ":qty, :px, :fee, :maker, :feed_ns, :wall_ns)", {"wall_ns": _now(), **fill})
        return cur.rowcount == 1

    def fills(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM fills ORDER BY feed_ns, order_id, child",
                                 self._db)

    def positions(self) -> dict[str, float]:
        """Net filled quantity per symbol (buys positive)."""
        return {str(s): float(q) for s, q in self._db.execute(
            "SELECT symbol, SUM(side * qty) FROM fills GROUP BY symbol ORDER BY symbol")}

    def event(self, kind: str, payload: dict[str, Any], *, order_id: str | None = None,
              feed_ns: int | None = None) -> None:
        self._db.execute("INSERT INTO events (wall_ns, feed_ns, kind, order_id, payload) "
                         "VALUES (?, ?, ?, ?, ?)",
                         (_now(), feed_ns, kind, order_id, json.dumps(payload, default=str)))

    def events(self, kind: str | None = None) -> pd.DataFrame:
        q, args = "SELECT * FROM events", ()
        if kind is not None:
            q, args = q + " WHERE kind = ?", (kind,)
        return pd.read_sql_query(q + " ORDER BY id", self._db, params=args)

    # ------------------------------------------------------------------ control and meta
    def request(self, action: str, reason: str, who: str = "cli") -> int:
        """A control request from outside the service (``kill``, ``reset``): its id."""
        if action not in ("kill", "reset"):
            raise ValueError(f"unknown control action {action!r}; use kill or reset")
        if not reason.strip():
            raise ValueError("a kill or reset needs a reason (--reason TEXT)")
        cur = self._db.execute("INSERT INTO control (wall_ns, action, reason, who) VALUES "
                               "(?, ?, ?, ?)", (_now(), action, reason, who))
        return int(cur.lastrowid or 0)

    def pending_requests(self) -> list[dict[str, Any]]:
        return [{"id": i, "wall_ns": w, "action": a, "reason": r, "who": who}
                for i, w, a, r, who in self._db.execute(
                    "SELECT id, wall_ns, action, reason, who FROM control WHERE applied_ns IS "
                    "NULL ORDER BY id")]

    def mark_applied(self, request_id: int) -> None:
        self._db.execute("UPDATE control SET applied_ns = ? WHERE id = ?", (_now(), request_id))

    def requests(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM control ORDER BY id", self._db)

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                         "value = excluded.value", (key, json.dumps(value, default=str)))

    def meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def counts(self) -> dict[str, int]:
        """Rows per table (the soak's reconciliation)."""
        return {t: int(self._db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
                for t in ("messages", "sent", "orders", "fills", "events", "control")}
