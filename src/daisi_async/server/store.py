"""Durable executions, log lines and blobs: SQLite (WAL) plus blob files.

Writes are grouped: every write is queued and all queued writes are committed together
on the next turn of the event loop; :meth:`Store.commit` waits for that commit, which is
what a submission does before it answers (nothing accepted is lost). Reads flush first,
so they always see every write made before them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import sqlite3
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._wire import INTERRUPTED, ExecutionStatus

INLINE_BLOB_BYTES = 256 * 1024
"""Blobs up to this size live in the database; larger ones are files."""

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_CACHE_TERMINAL = 50_000

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
    seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS executions_status ON executions(status, created_at);
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


class IdempotencyMismatch(Exception):
    """An idempotency key came back with a different request than the first time."""

    def __init__(self, eid: str) -> None:
        super().__init__(f"the key was first used for execution {eid}")
        self.eid = eid


def request_fingerprint(daisi_id: str, endpoint: str, args: dict[str, dict[str, Any]]) -> str:
    """The SHA-256 of a submission's canonical JSON: equal requests, equal fingerprints."""
    canonical = json.dumps(
        [daisi_id, endpoint, args], sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


class BlobTooLarge(Exception):
    """An upload went over the configured size limit."""


@dataclass
class ExecutionRecord:
    """One execution as the runtime keeps it."""

    id: str
    daisi_id: str
    endpoint: str
    owner: str | None
    status: ExecutionStatus
    created_at: float
    args: dict[str, dict[str, Any]]
    started_at: float | None = None
    finished_at: float | None = None
    error: dict[str, str] | None = None
    result_key: str | None = None
    result_size: int = 0
    result_json: str | None = None
    seq: int = 0
    last_line: str | None = None

    @property
    def upstream(self) -> list[str]:
        """Ids of the executions whose results this one takes as arguments."""
        return [a["execution"] for a in self.args.values() if "execution" in a]


@dataclass(frozen=True)
class Event:
    """A status change or a log line of one execution."""

    seq: int
    kind: str  # "status" | "log"
    data: str  # the status value, or the log line
    stream: str | None
    time: float

    def to_json(self) -> dict[str, Any]:
        """The event as the v1 routes show it."""
        if self.kind == "status":
            return {"seq": self.seq, "status": self.data, "time": self.time}
        return {"seq": self.seq, "stream": self.stream, "line": self.data, "time": self.time}


@dataclass(frozen=True)
class Blob:
    """A stored object: inline bytes or a file."""

    key: str
    size: int
    data: bytes | None
    path: Path | None
    owner: str | None = None
    """Who stored it (None: anonymous); results belong to their execution's owner."""

    def read(self) -> bytes:
        """The whole blob in memory (use :meth:`Store.iter_blob` for large ones)."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()


Listener = Callable[[ExecutionRecord, Event], None]


@dataclass
class _Pending:
    statements: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    idempotency: dict[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)


def valid_key(key: str) -> bool:
    """Whether ``key`` is a well-formed blob or execution key (no path tricks)."""
    return bool(_KEY_RE.match(key))


class Store:
    """The runtime's durable state under one directory.

    Example:
        >>> store = Store(Path(".daisi"))  # doctest: +SKIP
        >>> store.open()  # doctest: +SKIP
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs"
        self._db: sqlite3.Connection | None = None
        self._records: OrderedDict[str, ExecutionRecord] = OrderedDict()
        self._listeners: dict[str, list[Listener]] = {}
        self._pending = _Pending()
        self._flush_scheduled = False

    # -- lifecycle -----------------------------------------------------------------
    def open(self) -> None:
        """Create or open the database and the blob folder."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.blob_dir.mkdir(exist_ok=True)
        db = sqlite3.connect(self.root / "daisi.sqlite3", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(idempotency)")}
        if "fingerprint" not in columns:  # a store made before fingerprints were kept
            db.execute("ALTER TABLE idempotency ADD COLUMN fingerprint TEXT")
        self._db = db

    def close(self) -> None:
        """Flush and close."""
        if self._db is not None:
            self.flush()
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db

    def recover(self) -> list[ExecutionRecord]:
        """After a restart: fail what was running, return what was queued (oldest first)."""
        rows = self.db.execute(
            "SELECT id FROM executions WHERE status IN ('QUEUED', 'RUNNING') ORDER BY created_at"
        ).fetchall()
        queued: list[ExecutionRecord] = []
        for (eid,) in rows:
            rec = self.get(eid)
            assert rec is not None
            if rec.status is ExecutionStatus.RUNNING:
                self.finish(
                    rec,
                    ExecutionStatus.FAILED,
                    error={
                        "type": INTERRUPTED,
                        "message": "interrupted by a server restart",
                        "traceback": "",
                    },
                )
            else:
                queued.append(rec)
        self.flush()
        return queued

    # -- grouped writes ------------------------------------------------------------
    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        self._pending.statements.append((sql, params))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop: write through
                self.flush()

    def flush(self) -> None:
        """Commit every queued write in one transaction."""
        self._flush_scheduled = False
        pending, self._pending = self._pending, _Pending()
        if pending.statements:
            db = self.db
            db.execute("BEGIN")
            try:
                for sql, params in pending.statements:
                    db.execute(sql, params)
            except BaseException as exc:
                db.execute("ROLLBACK")
                for w in pending.waiters:
                    if not w.done():
                        w.set_exception(exc)
                raise
            db.execute("COMMIT")
        for w in pending.waiters:
            if not w.done():
                w.set_result(None)

    async def commit(self) -> None:
        """Wait until every write made so far is committed."""
        if not self._pending.statements:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.waiters.append(fut)
        await fut

    # -- executions ----------------------------------------------------------------
    def create(
        self,
        *,
        daisi_id: str,
        endpoint: str,
        owner: str | None,
        args: dict[str, dict[str, Any]],
        eid: str | None = None,
        idempotency: tuple[str, str] | None = None,
        fingerprint: str | None = None,
    ) -> ExecutionRecord:
        """Record a new QUEUED execution (durable after :meth:`commit`).

        ``idempotency`` is ``(scope, key)``; ``fingerprint`` (see
        :func:`request_fingerprint`) is kept with it for :meth:`idempotent`.
        """
        now = time.time()
        rec = ExecutionRecord(
            id=eid or str(uuid.uuid4()),
            daisi_id=daisi_id,
            endpoint=endpoint,
            owner=owner,
            status=ExecutionStatus.QUEUED,
            created_at=now,
            args=args,
            seq=1,
        )
        self._write(
            "INSERT INTO executions (id, daisi_id, endpoint, owner, status, created_at, args, seq)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
            (rec.id, daisi_id, endpoint, owner, rec.status.value, now, json.dumps(args)),
        )
        self._write(
            "INSERT INTO events (eid, seq, kind, stream, data, time)"
            " VALUES (?, 1, 'status', NULL, ?, ?)",
            (rec.id, rec.status.value, now),
        )
        if idempotency is not None:
            self._pending.idempotency[idempotency] = (rec.id, fingerprint)
            self._write(
                "INSERT INTO idempotency (scope, key, eid, fingerprint) VALUES (?, ?, ?, ?)",
                (idempotency[0], idempotency[1], rec.id, fingerprint),
            )
        self._cache(rec)
        return rec

    def exists(self, eid: str) -> bool:
        """Whether an execution with this id was ever recorded."""
        return self.get(eid) is not None

    def get(self, eid: str) -> ExecutionRecord | None:
        """The execution, or None."""
        rec = self._records.get(eid)
        if rec is not None:
            return rec
        self.flush()
        row = self.db.execute(
            "SELECT id, daisi_id, endpoint, owner, status, created_at, started_at, finished_at,"
            " args, error, result_key, result_size, result_json, seq FROM executions WHERE id = ?",
            (eid,),
        ).fetchone()
        if row is None:
            return None
        rec = ExecutionRecord(
            id=row[0],
            daisi_id=row[1],
            endpoint=row[2],
            owner=row[3],
            status=ExecutionStatus(row[4]),
            created_at=row[5],
            started_at=row[6],
            finished_at=row[7],
            args=json.loads(row[8]),
            error=json.loads(row[9]) if row[9] else None,
            result_key=row[10],
            result_size=row[11],
            result_json=row[12],
            seq=row[13],
        )
        self._cache(rec)
        return rec

    def idempotent(
        self, scope: str, key: str, fingerprint: str | None = None
    ) -> ExecutionRecord | None:
        """The execution created earlier with this idempotency key, if any.

        Raises :class:`IdempotencyMismatch` when both that request and this one have a
        fingerprint and they differ (keys stored without one match any request).
        """
        found = self._pending.idempotency.get((scope, key))
        if found is None:  # not created since the last commit: ask the database
            row = self.db.execute(
                "SELECT eid, fingerprint FROM idempotency WHERE scope = ? AND key = ?",
                (scope, key),
            ).fetchone()
            found = (row[0], row[1]) if row else None
        if found is None:
            return None
        eid, earlier = found
        if fingerprint is not None and earlier is not None and earlier != fingerprint:
            raise IdempotencyMismatch(eid)
        return self.get(eid)

    def _cache(self, rec: ExecutionRecord) -> None:
        self._records[rec.id] = rec
        self._records.move_to_end(rec.id)
        if len(self._records) > _CACHE_TERMINAL:
            for eid in list(self._records)[: len(self._records) // 10]:
                if self._records[eid].status.is_terminal and eid not in self._listeners:
                    del self._records[eid]

    def _event(self, rec: ExecutionRecord, kind: str, data: str, stream: str | None) -> Event:
        rec.seq += 1
        ev = Event(seq=rec.seq, kind=kind, data=data, stream=stream, time=time.time())
        self._write(
            "INSERT INTO events (eid, seq, kind, stream, data, time) VALUES (?, ?, ?, ?, ?, ?)",
            (rec.id, ev.seq, kind, stream, data, ev.time),
        )
        for listener in list(self._listeners.get(rec.id, ())):
            listener(rec, ev)
        return ev

    def start(self, rec: ExecutionRecord) -> None:
        """QUEUED -> RUNNING."""
        if rec.status is not ExecutionStatus.QUEUED:
            return
        rec.status = ExecutionStatus.RUNNING
        rec.started_at = time.time()
        self._write(
            "UPDATE executions SET status = ?, started_at = ?, seq = ? WHERE id = ?",
            (rec.status.value, rec.started_at, rec.seq + 1, rec.id),
        )
        self._event(rec, "status", rec.status.value, None)

    def finish(
        self,
        rec: ExecutionRecord,
        status: ExecutionStatus,
        *,
        error: dict[str, str] | None = None,
        result_key: str | None = None,
        result_size: int = 0,
        result_json: str | None = None,
    ) -> bool:
        """Move to a terminal status; False if the execution had already ended."""
        if rec.status.is_terminal:
            return False
        rec.status = status
        rec.finished_at = time.time()
        rec.error = error
        rec.result_key = result_key
        rec.result_size = result_size
        rec.result_json = result_json
        self._write(
            "UPDATE executions SET status = ?, finished_at = ?, error = ?, result_key = ?,"
            " result_size = ?, result_json = ?, seq = ? WHERE id = ?",
            (
                status.value,
                rec.finished_at,
                json.dumps(error) if error else None,
                result_key,
                result_size,
                result_json,
                rec.seq + 1,
                rec.id,
            ),
        )
        self._event(rec, "status", status.value, None)
        return True

    def log(self, rec: ExecutionRecord, stream: str, line: str) -> None:
        """Append one log line."""
        rec.last_line = line
        self._event(rec, "log", line, stream)
        self._write("UPDATE executions SET seq = ? WHERE id = ?", (rec.seq, rec.id))

    def events(
        self, eid: str, *, after: int = 0, kind: str | None = None, limit: int | None = None
    ) -> list[Event]:
        """Events of an execution with ``seq > after``, oldest first."""
        self.flush()
        sql = "SELECT seq, kind, data, stream, time FROM events WHERE eid = ? AND seq > ?"
        params: list[Any] = [eid, after]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [Event(*row) for row in self.db.execute(sql, params)]

    def last_lines(self, eid: str, limit: int) -> list[str]:
        """The last ``limit`` log lines, oldest first."""
        self.flush()
        rows = self.db.execute(
            "SELECT data FROM events WHERE eid = ? AND kind = 'log' ORDER BY seq DESC LIMIT ?",
            (eid, limit),
        ).fetchall()
        return [r[0] for r in reversed(rows)]

    def last_line(self, rec: ExecutionRecord) -> str | None:
        """The most recent log line of the execution."""
        if rec.last_line is None and rec.seq > 1:
            lines = self.last_lines(rec.id, 1)
            rec.last_line = lines[0] if lines else None
        return rec.last_line

    # -- listeners -------------------------------------------------------------------
    def listen(self, eid: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` on every new event of ``eid``; returns the unsubscribe function."""
        self._listeners.setdefault(eid, []).append(listener)

        def remove() -> None:
            lst = self._listeners.get(eid)
            if lst and listener in lst:
                lst.remove(listener)
                if not lst:
                    del self._listeners[eid]

        return remove

    # -- blobs -----------------------------------------------------------------------
    def blob_path(self, key: str) -> Path:
        """Where the file of a large blob lives."""
        if not valid_key(key):
            raise ValueError(f"invalid key {key!r}")
        return self.blob_dir / key

    def put_blob(self, data: bytes, *, owner: str | None, key: str | None = None) -> str:
        """Store bytes; returns the key."""
        key = key or uuid.uuid4().hex
        path: str | None = None
        inline: bytes | None = data
        if len(data) > INLINE_BLOB_BYTES:
            p = self.blob_path(key)
            p.write_bytes(data)
            path, inline = str(p), None
        self._write(
            "INSERT OR REPLACE INTO blobs (key, size, data, path, owner, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (key, len(data), inline, path, owner, time.time()),
        )
        return key

    def adopt_blob_file(self, key: str, path: Path, size: int, *, owner: str | None) -> str:
        """Register a file already written at :meth:`blob_path` (a large result)."""
        self._write(
            "INSERT OR REPLACE INTO blobs (key, size, data, path, owner, created_at)"
            " VALUES (?, ?, NULL, ?, ?, ?)",
            (key, size, str(path), owner, time.time()),
        )
        return key

    async def put_blob_stream(
        self, chunks: AsyncIterator[bytes], *, owner: str | None, max_bytes: int
    ) -> tuple[str, int]:
        """Store a streamed upload, spooling to disk past the inline size."""
        key = uuid.uuid4().hex
        buf = bytearray()
        tmp = self.blob_dir / f"{key}.part"
        fh = None
        size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise BlobTooLarge(f"the upload is larger than the limit of {max_bytes} bytes")
                if fh is None:
                    buf += chunk
                    if len(buf) > INLINE_BLOB_BYTES:
                        fh = open(tmp, "wb")  # noqa: SIM115, ASYNC230 - closed below; page-cache writes
                        fh.write(buf)
                        buf = bytearray()
                else:
                    fh.write(chunk)
        except BaseException:
            if fh is not None:
                fh.close()
                tmp.unlink(missing_ok=True)
            raise
        if fh is None:
            return self.put_blob(bytes(buf), owner=owner, key=key), size
        fh.close()
        final = self.blob_path(key)
        os.replace(tmp, final)
        return self.adopt_blob_file(key, final, size, owner=owner), size

    def get_blob(self, key: str) -> Blob | None:
        """The blob, or None (also for malformed keys)."""
        if not valid_key(key):
            return None
        self.flush()
        row = self.db.execute(
            "SELECT size, data, path, owner FROM blobs WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        return Blob(
            key=key, size=row[0], data=row[1], path=Path(row[2]) if row[2] else None, owner=row[3]
        )

    @staticmethod
    def iter_blob(blob: Blob, chunk_size: int = 1 << 20) -> Iterable[bytes]:
        """The blob's bytes in chunks, without loading a large file at once."""
        if blob.data is not None:
            yield blob.data
            return
        assert blob.path is not None
        with open(blob.path, "rb") as fh:
            while chunk := fh.read(chunk_size):
                yield chunk
