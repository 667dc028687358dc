"""Read-only queries of the store: what has been committed (a part of the store)."""

from __future__ import annotations

import sqlite3
from typing import Any

from .records import Event, ExecutionRecord

__all__ = ["Queries"]


class Queries:
    """Reads of committed events (a part of :class:`~.store.Store`)."""

    @property
    def db(self) -> sqlite3.Connection:  # provided by the store
        raise NotImplementedError

    def events(
        self, eid: str, *, after: int = 0, kind: str | None = None, limit: int | None = None
    ) -> list[Event]:
        """Committed events of an execution with ``seq > after``, oldest first."""
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
