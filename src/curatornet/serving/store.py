"""The service's catalogue changes in an embedded SQLite database.

The base catalogue comes from the data folder; the database records what
happened since: items added (with their embedding, so a restart can compute
their vectors again) and items removed. Every change is one transaction in
WAL mode with ``synchronous=FULL``, so an acknowledged change survives a crash
of the service, and concurrent writers (threads or processes) are serialised
by SQLite instead of corrupting the file.

The database remembers the fingerprint of the base catalogue and the
embedding dimension it was made for, and refuses another catalogue: its
changes refer to items of that catalogue.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from curatornet.errors import InputError

SCHEMA_VERSION = "1"

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS added_items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT NOT NULL UNIQUE,
    artist_id TEXT,
    one_of_a_kind INTEGER NOT NULL,
    embedding BLOB NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS removed_items (
    item_id TEXT PRIMARY KEY,
    removed_at TEXT NOT NULL
);
"""


class AlreadyExists(Exception):
    """The item id is already recorded (added or removed)."""


@dataclass
class AddedItem:
    item_id: str
    artist_id: str | None
    one_of_a_kind: bool
    embedding: np.ndarray  # float32 (dim,)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class CatalogueStore:
    """Added and removed items of one base catalogue, in a SQLite file."""

    def __init__(self, path: str | Path, catalogue_fingerprint: str, embedding_dim: int):
        self.path = Path(path)
        self.embedding_dim = int(embedding_dim)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # One connection shared by the service's threads, guarded by a lock;
            # autocommit mode so that transactions are explicit (BEGIN IMMEDIATE).
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 30000")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            self._db.execute("PRAGMA synchronous = FULL")
            with self._transaction() as db:
                for statement in filter(str.strip, _TABLES.split(";")):
                    db.execute(statement)
        except sqlite3.DatabaseError as exc:
            raise InputError(self.path, None, str(self.path), f"not a usable SQLite database ({exc})") from exc
        if str(mode).lower() != "wal":
            raise InputError(self.path, "journal_mode", mode, "the database could not switch to WAL mode")
        self._lock = threading.Lock()
        self._check_meta(catalogue_fingerprint)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _check_meta(self, fingerprint: str) -> None:
        expected = {
            "schema_version": SCHEMA_VERSION,
            "catalogue_fingerprint": fingerprint,
            "embedding_dim": str(self.embedding_dim),
        }
        with self._lock, self._transaction() as db:
            stored = dict(db.execute("SELECT key, value FROM meta").fetchall())
            for key, value in expected.items():
                if key not in stored:
                    db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
                elif stored[key] != value:
                    raise InputError(
                        self.path,
                        key,
                        stored[key],
                        f"the database belongs to another catalogue or model (expected {value}); "
                        "use another --db for this one",
                    )

    def added_items(self) -> list[AddedItem]:
        """Every added item (removed ones included), in the order they were added."""
        with self._lock:
            rows = self._db.execute(
                "SELECT item_id, artist_id, one_of_a_kind, embedding FROM added_items ORDER BY seq"
            ).fetchall()
        return [
            AddedItem(item_id, artist_id, bool(unique), np.frombuffer(blob, dtype="<f4").copy())
            for item_id, artist_id, unique, blob in rows
        ]

    def removed_ids(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT item_id FROM removed_items ORDER BY rowid")]

    def add_item(self, item_id: str, artist_id: str | None, one_of_a_kind: bool, embedding: np.ndarray) -> None:
        """Record a new item; :class:`AlreadyExists` when its id was added before."""
        blob = np.ascontiguousarray(embedding, dtype="<f4").reshape(self.embedding_dim).tobytes()
        try:
            with self._lock, self._transaction() as db:
                db.execute(
                    "INSERT INTO added_items (item_id, artist_id, one_of_a_kind, embedding, added_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (item_id, artist_id, int(bool(one_of_a_kind)), blob, _now()),
                )
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(item_id) from exc

    def remove_item(self, item_id: str) -> None:
        """Record a removal; :class:`AlreadyExists` when the item was removed before."""
        try:
            with self._lock, self._transaction() as db:
                db.execute("INSERT INTO removed_items (item_id, removed_at) VALUES (?, ?)", (item_id, _now()))
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(item_id) from exc

    def integrity(self) -> str:
        """SQLite's own check of the file ('ok' when sound)."""
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
