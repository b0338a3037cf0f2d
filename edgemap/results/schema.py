"""The store's schema as an ordered list of migrations; `PRAGMA user_version` says how many ran.

A migration is appended, never edited: a store written by this version must open in the next one.
"""

from __future__ import annotations

import sqlite3

# Each entry moves the schema from version i to i + 1. Statements only; the version bump is done here.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: runs, their metrics, a deployment's predictions
        """CREATE TABLE edgemap_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY, created_at TEXT NOT NULL, command TEXT NOT NULL, command_line TEXT,
            edgemap_commit TEXT, label TEXT, model TEXT, model_sha256 TEXT, parent_sha256 TEXT,
            recipe TEXT, device TEXT, backend TEXT, evidence TEXT, payload TEXT, source TEXT UNIQUE)""",
        """CREATE TABLE metrics (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, subject TEXT NOT NULL DEFAULT '',
            name TEXT NOT NULL, value REAL, unit TEXT NOT NULL DEFAULT '',
            basis TEXT NOT NULL CHECK (basis IN ('measured', 'estimated')),
            PRIMARY KEY (run_id, subject, name))""",
        """CREATE TABLE predictions (
            id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, bundle_sha256 TEXT NOT NULL,
            deployment TEXT NOT NULL DEFAULT '', source TEXT, input_sha256 TEXT, top1 TEXT, top1_index INTEGER,
            confidence REAL, topk TEXT, latency_ms REAL, thumbnail BLOB)""",
        "CREATE INDEX runs_by_time ON runs (created_at)",
        "CREATE INDEX runs_by_model ON runs (model_sha256, model)",
        "CREATE INDEX metrics_by_name ON metrics (name, value)",
        "CREATE INDEX predictions_by_bundle ON predictions (bundle_sha256, id)",
    ),
    (  # 2: runs written together (one `bench` of several models) share a group
        "ALTER TABLE runs ADD COLUMN group_id TEXT",
        "CREATE INDEX runs_by_group ON runs (group_id)",
    ),
    (  # 3: a deployment's refused requests (4xx/5xx answers of `edgemap serve`): no image, no prediction
        """CREATE TABLE request_errors (
            id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, bundle_sha256 TEXT NOT NULL,
            deployment TEXT NOT NULL DEFAULT '', request_id TEXT, path TEXT, status INTEGER NOT NULL,
            reason TEXT NOT NULL, detail TEXT, latency_ms REAL)""",
        "CREATE INDEX request_errors_by_bundle ON request_errors (bundle_sha256, id)",
    ),
)
LATEST = len(MIGRATIONS)
TABLES = {"edgemap_meta", "runs", "metrics", "predictions", "request_errors"}


def version(conn: sqlite3.Connection) -> int:
    """The schema version of an open database (0: nothing created yet)."""
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection) -> int:
    """Run the missing migrations, each in its own transaction (a killed process leaves a whole version)."""
    current = version(conn)
    for target in range(current + 1, LATEST + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if version(conn) >= target:  # another process migrated while we waited for the lock
                conn.execute("ROLLBACK")
                continue
            for statement in MIGRATIONS[target - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version(conn)
