"""Grouped commits that isolate failures and survive a failing disk.

Every change is an :class:`Op`: the SQL statements that make it durable and an
``apply`` callback that makes it visible. Ops queued during one turn of the event loop
(and the next) are committed together in one transaction; only then are their
``apply`` callbacks run, in order, so nothing is shown before it is durable. A group
of more than :data:`MAX_COMMIT_OPS` ops is committed in parts, one per turn, so that a
large batch of submissions never holds the event loop for long.

* **Bad data stays with its execution.** If a statement fails for a reason of its own
  (a constraint, a value SQLite can't bind), the batch is replayed with one savepoint
  per execution: the others commit, and the culprit's ops are reported through
  ``on_data_error`` (the store then fails that execution with a clear error).
* **A failing disk never hangs anyone.** If the storage itself fails (disk full, I/O
  error, read-only), every waiter gets a :class:`StorageError` at once; ops that answer
  a pending request (a submission, an upload) are dropped, since their request is told
  it failed; the others (progress of accepted executions) are kept and retried with
  backoff until the disk works again, and are then committed in their original order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .errors import StorageError, storage_error

__all__ = ["GroupWriter", "Op"]

_log = logging.getLogger("daisi_async.server.store")

RETRY_FIRST = 0.05
RETRY_MAX = 2.0
MAX_COMMIT_OPS = 500
"""The most ops committed in one transaction (one turn of the event loop): about 10 ms."""
MAX_KEPT_WHILE_FAILING = 200_000
"""While the storage fails, at most this many sheddable ops (log lines) are kept."""


@dataclass(eq=False)
class Op:
    """One change: statements to commit, then ``apply`` to make it visible."""

    eid: str | None
    statements: list[tuple[str, tuple[Any, ...]]]
    apply: Callable[[], None] | None = None
    droppable: bool = False
    """Answers a pending request: dropped (not retried) when the storage fails."""
    sheddable: bool = False
    """May be shed (a log line) when too much piles up while the storage fails."""
    on_dropped: Callable[[BaseException], None] | None = None
    """Called when the op will never be committed."""


class GroupWriter:
    """Commits :class:`Op` objects in groups (see the module docstring).

    Example:
        >>> writer = GroupWriter(db, on_data_error=print, on_storage_error=print)  # doctest: +SKIP
        >>> writer.add(Op(None, [("INSERT INTO t VALUES (?)", (1,))]))  # doctest: +SKIP
        >>> await writer.commit()  # doctest: +SKIP
    """

    def __init__(
        self,
        db: Callable[[], sqlite3.Connection],
        *,
        on_data_error: Callable[[str, BaseException], None],
        on_storage_error: Callable[[Iterable[Op], StorageError], None],
    ) -> None:
        self._db = db
        self._on_data_error = on_data_error
        self._on_storage_error = on_storage_error
        self._ops: list[Op] = []  # queued, in order
        self._added = 0  # ops ever queued
        self._settled = 0  # ops ever committed, dropped or failed: the first ones queued
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []  # (ops to settle, waiter)
        self._scheduled = False
        self._retry: asyncio.TimerHandle | None = None
        self._delay = RETRY_FIRST
        self._shed = 0
        self.failure: StorageError | None = None
        """The storage error of the last failed commit, until a commit succeeds."""
        self.window: Callable[[], float] | None = None
        """Seconds to gather ops before committing them (asked as each group starts);
        ``None`` or 0: the turn after next. The engine widens it under fan-out."""
        self.on_commit: Callable[[], None] | None = None
        """Called after each successful commit (the store's WAL checkpointer counts them)."""

    @property
    def pending(self) -> int:
        """The number of ops not yet committed."""
        return len(self._ops)

    def pending_ids(self) -> set[str | None]:
        """The executions with an op waiting to be committed (one pass over them all)."""
        return {op.eid for op in self._ops}

    def add(self, op: Op) -> None:
        """Queue ``op``; it is committed the turn after next of the event loop."""
        if self.failure is not None and op.sheddable and len(self._ops) >= MAX_KEPT_WHILE_FAILING:
            self._shed += 1
            if op.on_dropped is not None:
                op.on_dropped(self.failure)
            return
        self._ops.append(op)
        self._added += 1
        if self._scheduled or self._retry is not None:
            return  # while failing, the retry timer flushes
        self._scheduled = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (startup, shutdown): write through
            self.flush()
            return
        window = self.window() if self.window is not None else 0.0
        if window > 0:  # many executions in flight: fewer, larger commits
            loop.call_later(window, self.flush)
            return
        # The turn after next: what this turn set going (an execution's run, whose
        # worker may take it at once) adds its changes to the same transaction.
        loop.call_soon(loop.call_soon, self.flush)

    async def commit(self) -> None:
        """Wait until every op queued so far is committed.

        Raises :class:`StorageError` at once if the storage fails.
        """
        if not self._ops:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._added, fut))
        if self.failure is not None:
            self.flush()  # try now: answer at once, or find the disk working again
        await fut

    def close(self) -> None:
        """Cancel the retry timer (the caller flushes first if it can)."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    # -- committing ---------------------------------------------------------------------
    def flush(self) -> None:
        """Commit the queued ops in one transaction (the first :data:`MAX_COMMIT_OPS`;
        the rest the next turn), then make them visible."""
        self._scheduled = False
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        while self._flush_part() and not self._next_turn():
            pass  # (no event loop: write everything through now)

    def _next_turn(self) -> bool:
        """Flush the rest the next turn; False if there is no event loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self.flush)
        return True

    def _flush_part(self) -> bool:
        """Commit the first :data:`MAX_COMMIT_OPS` queued ops; whether more are queued."""
        part = self._ops[:MAX_COMMIT_OPS]
        del self._ops[:MAX_COMMIT_OPS]
        if not part:
            self._wake(None)
            return False
        try:
            committed = self._commit(part)
        except StorageError as err:
            self._failed(part, err)
            return False
        self._settled += len(part)
        if self.failure is not None:
            _log.warning(
                "the store works again; %d writes were kept and are now committed", len(committed)
            )
            if self._shed:
                _log.warning("%d log lines were lost while the store failed", self._shed)
                self._shed = 0
        self.failure = None
        self._delay = RETRY_FIRST
        if self.on_commit is not None:
            self.on_commit()
        for op in committed:
            if op.apply is not None:
                try:
                    op.apply()
                except Exception:  # a listener's bug must not undo the commit
                    _log.exception("after a commit")
        self._wake(None)
        return bool(self._ops)

    def _wake(self, err: BaseException | None) -> None:
        """Answer the waiters whose ops are all settled (all of them, with ``err``)."""
        if err is None:
            ready = [w for w in self._waiters if w[0] <= self._settled]
            self._waiters = [w for w in self._waiters if w[0] > self._settled]
        else:
            ready, self._waiters = self._waiters, []
        _resolve([fut for _, fut in ready], err)

    def _commit(self, ops: list[Op]) -> list[Op]:
        """Run ``ops`` in one transaction; returns those committed (all, unless bad data)."""
        db = self._db()
        try:
            db.execute("BEGIN")
            for op in ops:
                for sql, params in op.statements:
                    db.execute(sql, params)
            db.execute("COMMIT")
            return ops
        except Exception as exc:
            _rollback(db)
            err = storage_error(exc)
            if err is not None:
                raise err from exc
        return self._commit_isolated(db, ops)

    def _commit_isolated(self, db: sqlite3.Connection, ops: list[Op]) -> list[Op]:
        """Replay ``ops`` with a savepoint per execution; report the groups that fail."""
        groups: dict[object, list[Op]] = {}
        for op in ops:
            groups.setdefault(op.eid if op.eid is not None else op, []).append(op)
        failed: dict[object, BaseException] = {}
        try:
            db.execute("BEGIN")
            for key, group in groups.items():
                db.execute("SAVEPOINT op")
                try:
                    for op in group:
                        for sql, params in op.statements:
                            db.execute(sql, params)
                except Exception as exc:
                    err = storage_error(exc)
                    if err is not None:
                        raise err from exc
                    db.execute("ROLLBACK TO op")
                    failed[key] = exc
                db.execute("RELEASE op")
            db.execute("COMMIT")
        except Exception as exc:
            _rollback(db)
            err = storage_error(exc)
            raise (
                err or StorageError(f"the store could not be written: {exc}", full=False)
            ) from exc
        committed: list[Op] = []
        for key, group in groups.items():
            problem = failed.get(key)
            if problem is None:
                committed.extend(group)
                continue
            _log.error("could not store writes of %s: %r", key, problem)
            for op in group:
                if op.on_dropped is not None:
                    op.on_dropped(problem)
            if isinstance(key, str):
                self._on_data_error(key, problem)
        return committed

    def _failed(self, part: list[Op], err: StorageError) -> None:
        if self.failure is None:
            _log.error("%s; writes are kept and retried", err.message)
        self.failure = err
        kept: list[Op] = []
        dropped: list[Op] = []
        for op in part:
            (dropped if op.droppable else kept).append(op)
        self._settled += len(dropped)
        for op in dropped:
            if op.on_dropped is not None:
                op.on_dropped(err)
        # Kept ops come back first, before those queued after them.
        self._ops[:0] = kept
        self._wake(err)
        self._on_storage_error(kept, err)
        if self._ops:
            self._schedule_retry()

    def _schedule_retry(self) -> None:
        if self._retry is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._retry = loop.call_later(self._delay, self.flush)
        self._delay = min(self._delay * 2, RETRY_MAX)


def _rollback(db: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        if db.in_transaction:
            db.execute("ROLLBACK")


def _resolve(waiters: list[asyncio.Future[None]], err: BaseException | None) -> None:
    for w in waiters:
        if w.done():
            continue
        if err is None:
            w.set_result(None)
        else:
            w.set_exception(err)
