"""Open, validate and write the SQLite results store; queries live in queries.py.

One connection per call: sqlite3 connections must not cross threads, and opening one is cheap.
WAL mode lets readers (a report) run while a server writes; writers wait on a busy timeout instead of
failing. Every run is written in one transaction, so a killed process leaves the run whole or absent.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from edgemap.errors import EdgemapError
import edgemap.results.schema as schema
from edgemap.results.records import RunRecord, edgemap_commit, utc_now

SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000
DEFAULT_STORE = Path(".edgemap") / "store.db"


def default_store_path(store: str | Path | None = None) -> Path:
    """--store, else $EDGEMAP_STORE, else .edgemap/store.db in the working directory."""
    return Path(store or os.environ.get("EDGEMAP_STORE") or DEFAULT_STORE)


def _check_file(path: Path) -> None:
    """A path that exists must be a SQLite file; anything else is left untouched and refused."""
    if path.is_dir():
        raise EdgemapError(f"{path}: is a folder, not a results store")
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as f:
            if f.read(16) != SQLITE_MAGIC:
                raise EdgemapError(f"{path}: not an SQLite database (the results store); left unchanged")


class Store:
    """A validated results store at `path` (created and migrated on first write unless read_only)."""

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._local = threading.local()
        _check_file(self.path)
        if read_only:
            if not self.path.is_file():
                raise EdgemapError(f"{self.path}: no results store here (runs are recorded by eval, bench, train, "
                                   f"map, or `edgemap runs import`; --store / EDGEMAP_STORE choose the file)")
            with self.connect() as conn:
                self._check_schema(conn)
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise EdgemapError(f"{self.path}: cannot create the results store's folder ({exc.strerror})") from None
            with self.connect() as conn:
                self._check_schema(conn)  # before anything writes: a refused file must stay byte for byte
                conn.execute("PRAGMA journal_mode = WAL")  # persistent: readers and writers stop blocking each other
                schema.migrate(conn)

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened once: closing the last one checkpoints the WAL (an fsync, ~14 ms
        here), so a connection per write would cost more than the write."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        uri = f"file:{self.path.resolve()}?mode={'ro' if self.read_only else 'rwc'}"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.OperationalError as exc:
            raise EdgemapError(f"{self.path}: cannot open the results store ({exc})") from None
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        # WAL + NORMAL: a commit is atomic and survives a killed process; only a power cut may lose the last
        # commits (never half of one). FULL would fsync every commit.
        conn.execute("PRAGMA synchronous = NORMAL")
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection in autocommit mode (transactions are explicit), foreign keys on, waiting on locks."""
        conn = None
        try:
            conn = self._connection()
            yield conn
        except sqlite3.DatabaseError as exc:
            if conn is not None and conn.in_transaction:  # never leave a caller's transaction open
                conn.execute("ROLLBACK")
            raise _user_error(self.path, exc) or exc from None
        except BaseException:
            if conn is not None and conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close this thread's connection (others close when their thread's objects are collected)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        """Refuse a newer schema, or an SQLite file some other tool owns (an Optuna study.db)."""
        found = schema.version(conn)
        if found > schema.LATEST:
            raise EdgemapError(f"{self.path}: results store schema version {found} is newer than this edgemap "
                               f"understands ({schema.LATEST}); upgrade edgemap to read it")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        tables.discard("sqlite_sequence")
        if tables and (found == 0 or not tables & schema.TABLES):  # tables, but not ones our migrations made
            raise EdgemapError(f"{self.path}: an SQLite database of another tool (tables: "
                               f"{', '.join(sorted(tables)[:4])}), not an edgemap results store; left unchanged")

    # --- writes ------------------------------------------------------------------------------------
    def record(self, *runs: RunRecord) -> list[str]:
        """Write runs (and their metrics) in one transaction; returns their ids. An imported run whose
        `source` is already stored is skipped (its existing id is returned)."""
        if self.read_only:
            raise EdgemapError(f"{self.path}: opened read-only")
        ids = []
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                ids = [self._insert(conn, run) for run in runs]
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return ids

    def _insert(self, conn: sqlite3.Connection, run: RunRecord) -> str:
        if run.source:
            row = conn.execute("SELECT id FROM runs WHERE source = ?", (run.source,)).fetchone()
            if row:
                return row[0]
        conn.execute(
            "INSERT INTO runs (id, created_at, command, command_line, edgemap_commit, label, model, model_sha256, "
            "parent_sha256, recipe, device, backend, evidence, payload, source, group_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run.id, run.created_at or utc_now(), run.command, run.command_line,
             run.edgemap_commit if run.edgemap_commit is not None else edgemap_commit(), run.label, run.model,
             run.model_sha256, run.parent_sha256, _json(run.recipe), run.device, run.backend, _json(run.evidence),
             _json(run.payload), run.source, run.group_id))
        conn.executemany(
            "INSERT OR REPLACE INTO metrics (run_id, subject, name, value, unit, basis) VALUES (?, ?, ?, ?, ?, ?)",
            [(run.id, m.subject, m.name, None if m.value is None else float(m.value), m.unit, m.basis)
             for m in run.metrics])
        return run.id


def _user_error(path: Path, exc: sqlite3.DatabaseError) -> EdgemapError | None:
    """A problem the user can fix (locked, unreadable, read-only, disk full) as one line; None for our own bugs."""
    msg = str(exc)
    if "locked" in msg:
        return EdgemapError(f"{path}: the results store stayed locked for {BUSY_TIMEOUT_MS / 1000:.0f} s")
    if "not a database" in msg or "malformed" in msg:
        return EdgemapError(f"{path}: not a readable results store ({msg}); left unchanged")
    if isinstance(exc, sqlite3.OperationalError):  # readonly database, disk I/O error, database or disk is full
        return EdgemapError(f"{path}: the results store cannot be written or read ({msg})")
    return None


def _json(obj: object) -> str | None:
    return None if obj is None else json.dumps(obj, default=str)


def open_store(store: str | Path | None = None, read_only: bool = False) -> Store:
    """The store named by --store / $EDGEMAP_STORE / the default, validated (and migrated for writing)."""
    return Store(default_store_path(store), read_only=read_only)
