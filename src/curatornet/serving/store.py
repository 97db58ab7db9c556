"""The service's catalogue changes in an embedded SQLite database.

The base catalogue comes from the data folder; the database records what
happened since: items added (with their embedding, so that a restart or a new
model can compute their vectors again) and items removed. Every change is one
transaction in WAL mode with ``synchronous=FULL``, so an acknowledged change
survives a crash of the service, and concurrent writers (threads or
processes) are serialised by SQLite instead of corrupting the file.

At start the file is checked before anything is written to it: it must be
empty or hold exactly this service's tables, pass SQLite's ``quick_check``,
belong to the same base catalogue and embedding length (a fingerprint in its
``meta`` table), and be writable, unless it is opened read-only. Any of these
failing is an :class:`~curatornet.errors.InputError` naming the file.

While serving, a write waits at most ``lock_wait`` seconds for a lock held by
another connection (:data:`LOCK_WAIT_S` by default); SQLite's failures become
a :class:`StoreError` whose ``kind`` says what the client may do: ``busy``
(retry), ``full`` (the disk or the database is full) or ``failed``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from curatornet.errors import InputError

SCHEMA_VERSION = "1"
#: Longest a write waits for the database's lock (held by another connection) before it is refused.
LOCK_WAIT_S = 5.0

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
#: This service's tables and their columns, in order; any other table makes the file foreign.
COLUMNS = {
    "meta": ("key", "value"),
    "added_items": ("seq", "item_id", "artist_id", "one_of_a_kind", "embedding", "added_at"),
    "removed_items": ("item_id", "removed_at"),
}
_SQLITE_OWN = {"sqlite_sequence", "sqlite_stat1", "sqlite_stat4"}


class AlreadyExists(Exception):
    """The item id is already recorded (added or removed)."""


class StoreError(Exception):
    """A change the database did not record. ``kind``: ``busy`` (a lock held by another
    connection: retry later), ``full`` (the disk or the database is full), ``read_only``
    (the store was opened read-only) or ``failed`` (any other SQLite error)."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


@dataclass
class AddedItem:
    item_id: str
    artist_id: str | None
    one_of_a_kind: bool
    embedding: np.ndarray  # float32 (dim,)


@dataclass
class Changes:
    """Changes recorded after a watermark, and the watermark after them."""

    added: list[AddedItem] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    added_until: int = 0  # the last added_items.seq read
    removed_until: int = 0  # the last removed_items rowid read


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _classify(exc: sqlite3.Error) -> StoreError:
    name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreError("busy", f"the database is locked by another connection ({name})")
    if name == "SQLITE_FULL":
        return StoreError("full", f"the disk or the database is full ({exc})")
    return StoreError("failed", f"{exc} ({name})")


class CatalogueStore:
    """Added and removed items of one base catalogue, in a SQLite file; see the module docstring.

    ``read_only``: open the file without writing to it (a missing file means no
    changes); every write then raises :class:`StoreError` of kind ``read_only``.
    """

    def __init__(
        self,
        path: str | Path,
        catalogue_fingerprint: str,
        embedding_dim: int,
        read_only: bool = False,
        lock_wait: float = LOCK_WAIT_S,
    ):
        self.path = Path(path)
        self.embedding_dim = int(embedding_dim)
        self.read_only = bool(read_only)
        self.lock_wait = float(lock_wait)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if self.read_only and not self.path.exists():
            return  # nothing recorded yet: the base catalogue as it is
        try:
            self._db = self._open()
            self._check_file()
            if self.read_only:
                self._check_meta(catalogue_fingerprint, write=False)
            else:
                self._initialise(catalogue_fingerprint)
        except sqlite3.Error as exc:
            self._close_quietly()
            raise InputError(self.path, "--db", str(self.path), self._describe_start_error(exc)) from exc
        except BaseException:
            self._close_quietly()
            raise

    # ------------------------------------------------------------------ start

    def _open(self) -> sqlite3.Connection:
        # One connection shared by the service's threads, guarded by a lock;
        # autocommit mode so that transactions are explicit (BEGIN IMMEDIATE).
        options = {"isolation_level": None, "check_same_thread": False, "timeout": self.lock_wait}
        if not self.read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(self.path, "--db", str(self.path), f"cannot create its folder ({exc})") from exc
            return sqlite3.connect(self.path, **options)
        uri = self.path.resolve().as_uri()
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True, **options)
        try:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorname", "") != "SQLITE_CANTOPEN":
                raise
            # A WAL file on a read-only medium without its -shm file: SQLite can
            # only read it as immutable (nobody may write it meanwhile).
            db.close()
            return sqlite3.connect(f"{uri}?immutable=1", uri=True, **options)

    def _describe_start_error(self, exc: sqlite3.Error) -> str:
        name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
        if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or "malformed" in str(exc):
            return f"not a usable SQLite database: damaged or another kind of file ({exc}); give another --db"
        if name.startswith("SQLITE_READONLY") or (name == "SQLITE_CANTOPEN" and self.path.exists()):
            return (
                f"the database cannot be written ({exc}: a read-only file or folder?); "
                "start with --read-only to serve it without changes, or give a writable --db"
            )
        if name == "SQLITE_CANTOPEN":
            return f"the database cannot be created ({exc}: is its folder writable?)"
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return f"the database is locked by another process ({exc}); stop it or give another --db"
        return f"not a usable SQLite database ({exc}, {name})"

    def _check_file(self) -> None:
        """Refuse a damaged file or one with other tables, before anything is written to it."""
        db = self._db
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        problems = [row[0] for row in db.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise InputError(
                self.path,
                "--db",
                "; ".join(problems)[:300],
                "the SQLite database is damaged (SQLite's quick_check failed); give another --db",
            )
        foreign = sorted(tables - set(COLUMNS) - _SQLITE_OWN)
        if foreign:
            raise InputError(
                self.path,
                "--db",
                foreign[:10],
                f"not this service's database: it holds other tables (expected only {', '.join(sorted(COLUMNS))}); "
                "give another --db",
            )
        for table in sorted(tables & set(COLUMNS)):
            columns = tuple(row[1] for row in db.execute(f"PRAGMA table_info({table})"))
            if columns != COLUMNS[table]:
                raise InputError(
                    self.path,
                    "--db",
                    {table: list(columns)},
                    f"not this service's database: table {table} has other columns "
                    f"(expected {', '.join(COLUMNS[table])}); give another --db",
                )

    def _initialise(self, fingerprint: str) -> None:
        """Create the tables and record the catalogue (one transaction), then switch to WAL.

        The transaction always writes (schema_version), so that a file SQLite opened
        read-only is refused here rather than at the first change."""
        with self._lock, self._transaction(time.monotonic() + self.lock_wait, classify=False) as db:
            for statement in filter(str.strip, _TABLES.split(";")):
                db.execute(statement)
            self._check_meta(fingerprint, write=True)
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise InputError(self.path, "journal_mode", mode, "the database could not switch to WAL mode")
        self._db.execute("PRAGMA synchronous = FULL")

    def _check_meta(self, fingerprint: str, write: bool) -> None:
        db = self._db
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            return  # an empty file (read-only: no changes either)
        expected = {
            "schema_version": SCHEMA_VERSION,
            "catalogue_fingerprint": fingerprint,
            "embedding_dim": str(self.embedding_dim),
        }
        stored = dict(db.execute("SELECT key, value FROM meta").fetchall())
        missing = [key for key in expected if key not in stored]
        if missing and self._count_changes() > 0:
            raise InputError(
                self.path,
                "--db",
                missing,
                "the database holds changes but no record of its catalogue; give another --db",
            )
        for key, value in expected.items():
            if key in stored and stored[key] != value:
                raise InputError(
                    self.path,
                    key,
                    stored[key],
                    f"the database belongs to another catalogue or model (expected {value}); "
                    "use another --db for this one",
                )
            if key not in stored and write:
                db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _count_changes(self) -> int:
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return sum(
            self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("added_items", "removed_items")
            if table in tables
        )

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _transaction(self, deadline: float, classify: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, waiting for another connection's lock until ``deadline``
        (time.monotonic()); rolled back on any error. The caller holds ``self._lock``."""
        db = self._db
        try:
            wait_ms = max(0, int((deadline - time.monotonic()) * 1000))
            db.execute(f"PRAGMA busy_timeout = {wait_ms}")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite may have rolled back already (a full disk, say)
                    db.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            if not classify:
                raise
            raise _classify(exc) from exc

    @contextmanager
    def _write(self, deadline: float) -> Iterator[sqlite3.Connection]:
        if self._db is None or self.read_only:
            raise StoreError("read_only", "the database was opened read-only")
        if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise StoreError("busy", "the database is busy with other changes")
        try:
            with self._transaction(deadline) as db:
                yield db
        finally:
            self._lock.release()

    # ------------------------------------------------------------------ reads

    def changes(self, added_after: int = 0, removed_after: int = 0) -> Changes:
        """Items added after seq ``added_after`` and removed after rowid ``removed_after``, in
        the order they were recorded (one read transaction). Damaged rows are an InputError."""
        if self._db is None:
            return Changes(added_until=added_after, removed_until=removed_after)
        with self._lock:
            try:
                added_rows, removed_rows = self._read_changes(added_after, removed_after)
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise InputError(self.path, "--db", str(self.path), f"cannot read the changes ({exc})") from exc
        if added_rows is None:
            return Changes(added_until=added_after, removed_until=removed_after)
        out = Changes(added_until=added_after, removed_until=removed_after)
        size = 4 * self.embedding_dim
        for seq, item_id, artist_id, unique, blob in added_rows:
            if not isinstance(blob, bytes) or len(blob) != size:
                length = len(blob) if isinstance(blob, bytes | str) else type(blob).__name__
                problem = f"a damaged row (item {item_id!r}): expected {size} bytes"
                raise InputError(self.path, "added_items.embedding", length, problem)
            artist = None if artist_id is None else str(artist_id)
            out.added.append(AddedItem(str(item_id), artist, bool(unique), np.frombuffer(blob, dtype="<f4").copy()))
            out.added_until = int(seq)
        for rowid, item_id in removed_rows:
            out.removed.append(str(item_id))
            out.removed_until = int(rowid)
        return out

    def _read_changes(self, added_after: int, removed_after: int):
        db = self._db
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"added_items", "removed_items"} <= tables:
            return None, None
        db.execute("BEGIN")
        added_rows = db.execute(
            "SELECT seq, item_id, artist_id, one_of_a_kind, embedding FROM added_items WHERE seq > ? ORDER BY seq",
            (added_after,),
        ).fetchall()
        removed_rows = db.execute(
            "SELECT rowid, item_id FROM removed_items WHERE rowid > ? ORDER BY rowid", (removed_after,)
        ).fetchall()
        db.execute("COMMIT")
        return added_rows, removed_rows

    def added_items(self) -> list[AddedItem]:
        """Every added item (removed ones included), in the order they were added."""
        return self.changes().added

    def removed_ids(self) -> list[str]:
        return self.changes().removed

    # ------------------------------------------------------------------ writes

    def add_item(
        self,
        item_id: str,
        artist_id: str | None,
        one_of_a_kind: bool,
        embedding: np.ndarray,
        deadline: float | None = None,
    ) -> None:
        """Record a new item; :class:`AlreadyExists` when its id was added before, :class:`StoreError`
        when the database cannot record it by ``deadline`` (time.monotonic(); default: lock_wait from now)."""
        blob = np.ascontiguousarray(embedding, dtype="<f4").reshape(self.embedding_dim).tobytes()
        deadline = time.monotonic() + self.lock_wait if deadline is None else deadline
        try:
            with self._write(deadline) as db:
                db.execute(
                    "INSERT INTO added_items (item_id, artist_id, one_of_a_kind, embedding, added_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (item_id, artist_id, int(bool(one_of_a_kind)), blob, _now()),
                )
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(item_id) from exc

    def remove_item(self, item_id: str, deadline: float | None = None) -> None:
        """Record a removal; :class:`AlreadyExists` when the item was removed before."""
        deadline = time.monotonic() + self.lock_wait if deadline is None else deadline
        try:
            with self._write(deadline) as db:
                db.execute("INSERT INTO removed_items (item_id, removed_at) VALUES (?, ?)", (item_id, _now()))
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(item_id) from exc

    def integrity(self) -> str:
        """SQLite's own check of the file ('ok' when sound)."""
        if self._db is None:
            return "ok"
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    def _close_quietly(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None

    def close(self) -> None:
        with self._lock:
            self._close_quietly()
