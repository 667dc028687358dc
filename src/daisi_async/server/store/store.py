"""Durable executions, log lines and blobs: SQLite (WAL) plus blob files.

Every change goes through the :class:`~.writer.GroupWriter`: changes made during one
turn of the event loop (and the next) are committed together, and an execution's fields,
its events and its listeners change only after the commit (see :class:`ExecutionRecord`).
A submission awaits :meth:`Store.commit` before it answers, so nothing accepted is lost.
Text that SQLite can't hold (lone surrogates in a log line or an error message) is
escaped on the way in: one Daisi's output can never fail another's writes.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..._wire import INTERRUPTED, ExecutionStatus
from .blobs import BlobFiles, BlobMethods
from .changes import Changes
from .checkpoints import Checkpointer
from .errors import StorageError
from .ids import new_id
from .listeners import Listener, Listeners
from .lock import StoreLock
from .queries import Queries
from .records import Event, ExecutionRecord
from .schema import open_database
from .writer import GroupWriter, Op

__all__ = ["STORAGE_FAILED", "Listener", "Store"]

STORAGE_FAILED = "daisi.StorageError"
_INSERT_EXECUTION = (
    "INSERT INTO executions (id, daisi_id, endpoint, owner, status, created_at, started_at,"
    " args, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_CACHE_TERMINAL = 50_000
"""Records kept in memory; past it, the oldest finished ones are forgotten a tenth at a
time (they are read back from the database when asked for)."""
_QUEUED = ExecutionStatus.QUEUED.value


class Store(BlobMethods, Queries, Listeners, Changes):
    """The runtime's durable state under one directory (one server per directory).

    Example:
        >>> store = Store(Path(".daisi"))  # doctest: +SKIP
        >>> store.open()  # doctest: +SKIP
    """

    def __init__(self, root: Path, *, synchronous: str = "NORMAL") -> None:
        self.root = root
        self.files = BlobFiles(root / "blobs")
        self.synchronous = synchronous
        self._db: sqlite3.Connection | None = None
        self._lock: StoreLock | None = None
        self._records: OrderedDict[str, ExecutionRecord] = OrderedDict()
        self._evict_at = _CACHE_TERMINAL  # the cache size at which the next pass runs
        self._unsaved: dict[str, ExecutionRecord] = {}  # created, creation not committed
        self._creating: dict[str, Op] = {}  # the ops of those creations, while queued
        self._starting: dict[str, tuple[Op, float]] = {}  # RUNNING changes queued (and when)
        Listeners.__init__(self)
        self._idempotency: dict[tuple[str, str], str] = {}  # uncommitted creations' keys -> id
        self._data_failed: set[str] = set()
        self._checkpointer: Checkpointer | None = None
        self._writer = GroupWriter(
            lambda: self.db,
            on_data_error=self._data_error,
            on_storage_error=self._storage_error,
        )
        self.on_lost: Callable[[ExecutionRecord], None] | None = None
        """Called when an execution's creation will never be committed (the engine
        stops its run)."""

    # -- lifecycle -----------------------------------------------------------------
    def open(self) -> None:
        """Take the store's lock (:class:`StoreLockedError` if another server holds it),
        then create or open the database and the blob folder."""
        if self._db is not None:
            return
        self._lock = StoreLock.acquire(self.root)
        try:
            self.files.folder.mkdir(exist_ok=True)
            path = self.root / "daisi.sqlite3"
            db = open_database(path, synchronous=self.synchronous)
        except BaseException:
            self._lock.release()
            self._lock = None
            raise
        self._db = db
        self._checkpointer = Checkpointer(path, db)
        self._writer.on_commit = self._checkpointer.committed

    def close(self) -> None:
        """Commit what can be committed, close, and release the lock."""
        if self._db is not None:
            self._writer.flush()
            self._writer.close()
            if self._checkpointer is not None:
                self._writer.on_commit = None
                self._checkpointer.close()
                self._checkpointer = None
            self._db.close()  # the last connection: it checkpoints and removes the WAL
            self._db = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @property
    def db(self) -> sqlite3.Connection:
        """The open database connection."""
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db

    @property
    def failure(self) -> StorageError | None:
        """The storage error of the last failed commit, until a commit succeeds."""
        return self._writer.failure

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
        self._writer.flush()
        return queued

    # -- writes --------------------------------------------------------------------
    async def commit(self) -> None:
        """Wait until every change made so far is committed.

        Raises :class:`StorageError` at once when the storage fails.
        """
        await self._writer.commit()

    def flush(self) -> None:
        """Commit every queued change now (outside the event loop, or at shutdown)."""
        self._writer.flush()

    def group_commits(self, window: Callable[[], float]) -> None:
        """Ask ``window()`` how long to gather changes before each commit (see
        :attr:`.writer.GroupWriter.window`)."""
        self._writer.window = window

    def saved(self, rec: ExecutionRecord) -> bool:
        """After :meth:`commit`: whether ``rec``'s creation was stored."""
        return rec.id not in self._unsaved and self._records.get(rec.id) is rec

    def check_saved(self, rec: ExecutionRecord) -> None:
        """After :meth:`commit`: raise if ``rec``'s creation could not be stored."""
        if not self.saved(rec):
            raise StorageError(f"execution {rec.id} could not be stored", full=False)

    def _data_error(self, eid: str, exc: BaseException) -> None:
        rec = self._records.get(eid)
        if rec is None or eid in self._unsaved:
            return
        if eid in self._data_failed:
            return  # even the failure could not be stored: a restart marks it
        self._data_failed.add(eid)
        # The execution exists on disk, but some of its changes could not be stored:
        # fail it (only it) with a message that says so.
        message = f"the runtime could not store this execution's output: {exc!r}"
        rec.target = rec.status  # the failed changes never happened
        self.finish(
            rec,
            ExecutionStatus.FAILED,
            error={"type": STORAGE_FAILED, "message": message, "traceback": ""},
            force=True,
        )

    def _storage_error(self, kept: Iterable[Op], err: StorageError) -> None:
        for eid in {op.eid for op in kept if op.eid is not None}:
            rec = self._records.get(eid)
            if rec is not None:
                self._notify(rec, None)

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
    ) -> ExecutionRecord:
        """Record a new QUEUED execution (durable after :meth:`commit`).

        ``idempotency`` is ``(scope, key)``: :meth:`idempotent` finds the execution by
        it (and checks a request that comes again against this one's).
        """
        now = time.time()
        rec = ExecutionRecord(
            id=eid or new_id(),
            daisi_id=daisi_id,
            endpoint=endpoint,
            owner=owner,
            status=ExecutionStatus.QUEUED,
            created_at=now,
            args=args,
            seq=1,
        )
        statements: list[tuple[str, tuple[Any, ...]]] = [
            (
                _INSERT_EXECUTION,
                (
                    rec.id,
                    daisi_id,
                    endpoint,
                    owner,
                    _QUEUED,
                    now,
                    None,
                    json.dumps(args),
                    1,
                ),
            ),
        ]
        if idempotency is not None:
            self._idempotency[idempotency] = rec.id
            statements.append(
                (
                    "INSERT INTO idempotency (scope, key, eid, fingerprint) VALUES (?, ?, ?, ?)",
                    (idempotency[0], idempotency[1], rec.id, ""),
                )
            )

        def saved() -> None:
            self._unsaved.pop(rec.id, None)
            self._creating.pop(rec.id, None)
            if idempotency is not None:
                self._idempotency.pop(idempotency, None)
            self._notify(rec, Event(seq=1, kind="status", data=_QUEUED, stream=None, time=now))

        def lost(exc: BaseException) -> None:
            self._unsaved.pop(rec.id, None)
            self._creating.pop(rec.id, None)
            self._records.pop(rec.id, None)
            if idempotency is not None:
                self._idempotency.pop(idempotency, None)
            rec.target = ExecutionStatus.FAILED
            if self.on_lost is not None:
                self.on_lost(rec)

        op = Op(rec.id, statements, saved, droppable=True, on_dropped=lost)
        self._unsaved[rec.id] = rec
        self._creating[rec.id] = op
        self._cache(rec)
        self._writer.add(op)
        return rec

    def exists(self, eid: str) -> bool:
        """Whether an execution with this id was recorded (or is being recorded)."""
        return eid in self._unsaved or self.get(eid) is not None

    def get(self, eid: str) -> ExecutionRecord | None:
        """The execution, or None (also while its creation is not yet committed)."""
        if eid in self._unsaved:
            return None
        rec = self._records.get(eid)
        if rec is not None:
            return rec
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

    def _cache(self, rec: ExecutionRecord) -> None:
        self._records[rec.id] = rec
        self._records.move_to_end(rec.id)
        if len(self._records) > self._evict_at:
            self._evict(_CACHE_TERMINAL // 10)

    def _evict(self, n: int) -> None:
        """Forget the finished records among the ``n`` oldest in the cache (not those
        listened to or with a write pending). Should too few go (a fan-out larger than
        the cache), the next pass waits for ``n`` more records: a pass is never made
        per record."""
        pending = self._writer.pending_ids()  # (once per pass: it looks at every write)
        for eid in list(itertools.islice(self._records, n)):
            old = self._records[eid]
            if (
                old.latest.is_terminal
                and old.status.is_terminal
                and eid not in self._listeners
                and eid not in pending
            ):
                del self._records[eid]
        self._evict_at = max(_CACHE_TERMINAL, len(self._records) + n)
