"""The SQLite schema of the store, and opening the database file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["INSERT_BLOB", "INSERT_EVENT", "open_database"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    daisi_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    owner TEXT,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    args TEXT NOT NULL,
    error TEXT,
    result_key TEXT,
    result_size INTEGER NOT NULL DEFAULT 0,
    result_json TEXT,
    seq INTEGER NOT NULL DEFAULT 0,
    result_data BLOB
);
CREATE INDEX IF NOT EXISTS executions_status ON executions(status, created_at);
CREATE INDEX IF NOT EXISTS executions_owner ON executions(owner, created_at, id);
CREATE TABLE IF NOT EXISTS events (
    eid TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    stream TEXT,
    data TEXT NOT NULL,
    time REAL NOT NULL,
    PRIMARY KEY (eid, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blobs (
    key TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    data BLOB,
    path TEXT,
    owner TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    eid TEXT NOT NULL,
    fingerprint TEXT,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
"""

INSERT_EVENT = "INSERT INTO events (eid, seq, kind, stream, data, time) VALUES (?, ?, ?, ?, ?, ?)"
INSERT_BLOB = (
    "INSERT OR REPLACE INTO blobs (key, size, data, path, owner, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


def open_database(path: Path, *, synchronous: str) -> sqlite3.Connection:
    """Open (or create) the database in WAL mode, with every table and column."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.executescript(_SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(idempotency)")}
        if "fingerprint" not in columns:  # a store made before fingerprints were kept
            db.execute("ALTER TABLE idempotency ADD COLUMN fingerprint TEXT")
        columns = {row[1] for row in db.execute("PRAGMA table_info(executions)")}
        if "result_data" not in columns:  # made before small results lived in their row
            db.execute("ALTER TABLE executions ADD COLUMN result_data BLOB")
    except BaseException:
        db.close()
        raise
    return db
