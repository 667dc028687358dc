"""Read-only queries of the store: what has been committed (a part of the store), and
executions by idempotency key (also those whose creation is not committed yet)."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from typing import Any

from .idempotency import Request, check_request
from .records import Event, ExecutionRecord

__all__ = ["Queries"]

_ACTIVE = frozenset({"QUEUED", "RUNNING"})
_KEYS_PER_QUERY = 500  # (SQLite allows 32,766 parameters a statement)


class Queries:
    """Reads of committed events (a part of :class:`~.store.Store`)."""

    @property
    def db(self) -> sqlite3.Connection:  # provided by the store
        raise NotImplementedError

    def get(self, eid: str) -> ExecutionRecord | None:  # provided by the store
        raise NotImplementedError

    _idempotency: dict[tuple[str, str], str]  # keys of uncommitted creations -> their id
    _records: dict[str, ExecutionRecord]

    def idempotent(
        self, scope: str, key: str, request: Request | None = None, *, stored: bool = True
    ) -> ExecutionRecord | None:
        """The execution created earlier with this idempotency key, if any.

        ``stored=False``: the caller knows the key is not in the table (it asked
        :meth:`stored_keys` in this turn of the loop); only uncommitted creations are
        looked at. Raises :class:`~.idempotency.IdempotencyMismatch` when ``request``
        (``(daisi_id, endpoint, args)``) is not the one that made it (see
        :func:`~.idempotency.check_request`).
        """
        kept: str | None = ""  # (a key kept bare)
        if (eid := self._idempotency.get((scope, key))) is not None:  # not yet committed
            rec = self._records.get(eid)
        elif not stored:
            return None
        else:
            row = self.db.execute(
                "SELECT eid, fingerprint FROM idempotency WHERE scope = ? AND key = ?",
                (scope, key),
            ).fetchone()
            if row is None:
                return None
            eid, kept = row
            rec = self.get(eid)
        if request is not None and rec is not None:
            check_request(kept, (rec.daisi_id, rec.endpoint, rec.args), request, eid)
        return rec

    def stored_keys(self, scope: str, keys: Collection[str]) -> set[str]:
        """Which of ``keys`` (idempotency keys of ``scope``) the table holds: one query
        for a slice of a batch instead of one per submission.

        Example:
            >>> store.stored_keys("", ["k1", "k2"])  # doctest: +SKIP
            {'k1'}
        """
        found: set[str] = set()
        wanted = list(dict.fromkeys(keys))
        for start in range(0, len(wanted), _KEYS_PER_QUERY):
            part = wanted[start : start + _KEYS_PER_QUERY]
            marks = ",".join("?" * len(part))
            rows = self.db.execute(
                f"SELECT key FROM idempotency WHERE scope = ? AND key IN ({marks})",
                (scope, *part),
            )
            found.update(row[0] for row in rows)
        return found

    def list_executions(
        self,
        *,
        owner: str | None,
        limit: int,
        daisi_id: str | None = None,
        statuses: Collection[str] = (),
        before: ExecutionRecord | None = None,
        hidden_daisies: Collection[str] = (),
    ) -> list[ExecutionRecord]:
        """Committed executions made by ``owner`` (None: the anonymous ones), newest
        first: of ``daisi_id`` if given, with one of ``statuses`` if given, created before
        ``before`` if given (a cursor: ties on the creation time go by id), and not of
        the ``hidden_daisies``.

        Example:
            >>> store.list_executions(owner="al", limit=9, statuses=["RUNNING"])  # doctest: +SKIP
        """
        # Active executions are few: find them by status (executions_status), not by
        # walking all of the owner's (executions_owner): 0.4 ms instead of 48 ms among
        # 200,000 executions.
        active = bool(statuses) and set(statuses) <= _ACTIVE
        index = "executions_status" if active else "executions_owner"
        sql = f"SELECT id FROM executions INDEXED BY {index} WHERE owner IS ?"
        params: list[Any] = [owner]
        if daisi_id is not None:
            sql += " AND daisi_id = ?"
            params.append(daisi_id)
        if statuses:
            sql += f" AND status IN ({', '.join('?' * len(statuses))})"
            params.extend(statuses)
        if hidden_daisies:
            sql += f" AND daisi_id NOT IN ({', '.join('?' * len(hidden_daisies))})"
            params.extend(hidden_daisies)
        if before is not None:
            sql += " AND (created_at < ? OR (created_at = ? AND id < ?))"
            params.extend([before.created_at, before.created_at, before.id])
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        params.append(limit)
        found = (self.get(eid) for (eid,) in self.db.execute(sql, params).fetchall())
        return [rec for rec in found if rec is not None]

    def active_counts(self) -> dict[tuple[str, str], int]:
        """``(daisi_id, status) -> count`` of the committed QUEUED and RUNNING executions."""
        rows = self.db.execute(
            "SELECT daisi_id, status, COUNT(*) FROM executions"
            " WHERE status IN ('QUEUED', 'RUNNING') GROUP BY daisi_id, status"
        ).fetchall()
        return {(daisi_id, status): n for daisi_id, status, n in rows}

    def check_readable(self) -> None:
        """One cheap read of the database (raises :class:`sqlite3.Error` when it fails)."""
        self.db.execute("SELECT 1 FROM executions LIMIT 1").fetchall()

    def events(
        self, eid: str, *, after: int = 0, kind: str | None = None, limit: int | None = None
    ) -> list[Event]:
        """Committed events of an execution with ``seq > after``, oldest first.

        Log lines are rows of ``events``. Status changes are read from the execution's
        row (:meth:`status_events`), which the same commits change: a store written by
        an earlier version also kept them as rows, and each is listed once.
        """
        sql = "SELECT seq, kind, data, stream, time FROM events WHERE eid = ? AND seq > ?"
        params: list[Any] = [eid, after]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = [Event(*row) for row in self.db.execute(sql, params)]
        if kind == "log":
            return rows
        stored = {e.seq for e in rows}
        statuses = [e for e in self.status_events(eid) if e.seq > after and e.seq not in stored]
        if not statuses:
            return rows
        merged = sorted(rows + statuses, key=lambda e: e.seq)
        return merged if limit is None else merged[:limit]

    def status_events(self, eid: str) -> list[Event]:
        """The committed status changes of an execution, from its row: ``QUEUED`` (seq 1,
        at its creation), ``RUNNING`` (seq 2, if it started: nothing is logged before)
        and its end (at the row's last seq).

        Example:
            >>> [(e.seq, e.data) for e in store.status_events(eid)]  # doctest: +SKIP
            [(1, 'QUEUED'), (2, 'RUNNING'), (5, 'FINISHED')]
        """
        row = self.db.execute(
            "SELECT status, created_at, started_at, finished_at, seq FROM executions WHERE id = ?",
            (eid,),
        ).fetchone()
        if row is None:
            return []
        status, created, started, finished, seq = row
        found = [Event(1, "status", "QUEUED", None, created)]
        if started is not None:
            found.append(Event(2, "status", "RUNNING", None, started))
        if status not in _ACTIVE:
            found.append(Event(seq, "status", status, None, finished or started or created))
        return found

    def last_lines(self, eid: str, limit: int) -> list[str]:
        """The last ``limit`` committed log lines, oldest first."""
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
