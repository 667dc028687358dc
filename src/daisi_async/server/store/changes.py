"""How an execution's status changes and log lines are written (a part of the store):
each is an op of the group writer, shown to listeners once committed; a start that is
not committed yet takes the end that follows it into the same ``UPDATE``, as a creation
not committed yet takes the start (:meth:`Changes.start`, :meth:`Changes.finish`).

Example:
    >>> store.start(rec)  # doctest: +SKIP
    >>> store.finish(rec, ExecutionStatus.FINISHED, result_json="3")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..._wire import ExecutionStatus
from .blobs import ROW_RESULT_BYTES
from .errors import storable, storable_text
from .records import Event, ExecutionRecord
from .schema import INSERT_EVENT
from .writer import GroupWriter, Op

__all__ = ["Changes"]

_END = (
    "UPDATE executions SET status = ?, finished_at = ?, error = ?, result_key = ?,"
    " result_size = ?, result_json = ?, result_data = ?, seq = ? WHERE id = ?"
)
_END_STARTED = (  # a start and its end in one change
    "UPDATE executions SET status = ?, started_at = ?, finished_at = ?, error = ?,"
    " result_key = ?, result_size = ?, result_json = ?, result_data = ?, seq = ? WHERE id = ?"
)
_RUNNING = ExecutionStatus.RUNNING.value


class Changes:
    """Status changes and log lines (a part of :class:`~.store.Store`)."""

    _writer: GroupWriter
    _creating: dict[str, Op]  # creations queued, not yet committed
    _starting: dict[str, tuple[Op, float]]  # starts queued (op, when), nothing after them

    if TYPE_CHECKING:  # the store's own (listeners, blobs): declared, not defined here,
        # so that the order of the store's bases never hides them

        def _notify(self, rec: ExecutionRecord, ev: Event | None) -> None: ...

        @staticmethod
        def _blob_statement(
            key: str, content: bytes | Path, size: int, owner: str | None
        ) -> tuple[str, tuple[Any, ...]]: ...

    def _event(
        self,
        rec: ExecutionRecord,
        kind: str,
        data: str,
        stream: str | None,
        statements: list[tuple[str, tuple[Any, ...]]],
        apply: Callable[[], None] | None = None,
        *,
        at: float,
        sheddable: bool = False,
    ) -> Op:
        """Queue ``statements`` as the change that makes event ``kind`` of ``rec`` (at
        time ``at``), shown to listeners once committed. A status change is its execution
        row's own change (:meth:`~.queries.Queries.events` reads it from there); a log
        line's statements also write its row of ``events``."""
        self._starting.pop(rec.id, None)  # (an end can no longer be folded into it)
        rec.seq += 1
        ev = Event(seq=rec.seq, kind=kind, data=data, stream=stream, time=at)

        def visible() -> None:
            if apply is not None:
                apply()
            self._notify(rec, ev)

        op = Op(rec.id, statements, visible, sheddable=sheddable)
        self._writer.add(op)
        return op

    def start(self, rec: ExecutionRecord) -> None:
        """QUEUED -> RUNNING."""
        if rec.latest is not ExecutionStatus.QUEUED:
            return
        rec.target = ExecutionStatus.RUNNING
        started = time.time()

        def apply() -> None:
            rec.status = ExecutionStatus.RUNNING
            rec.started_at = started

        creation = self._creating.get(rec.id)
        if creation is not None:  # a worker took it at once: one INSERT says both
            self._start_created(rec, creation, started, apply)
            return

        def forget(_exc: BaseException | None = None) -> None:
            self._starting.pop(rec.id, None)

        def committed() -> None:
            forget()
            apply()

        op = self._event(
            rec,
            "status",
            _RUNNING,
            None,
            [
                (
                    "UPDATE executions SET status = ?, started_at = ?, seq = ? WHERE id = ?",
                    (_RUNNING, started, rec.seq + 1, rec.id),
                )
            ],
            committed,
            at=started,
        )
        # Until it is committed, an end that comes next is folded into this change.
        # (No closure here refers to ``op``: a cycle would leave every op to the
        # garbage collector.)
        op.on_dropped = forget
        self._starting[rec.id] = (op, started)

    def _start_created(
        self, rec: ExecutionRecord, creation: Op, started: float, apply: Callable[[], None]
    ) -> None:
        """QUEUED -> RUNNING folded into the queued creation of ``rec``: the execution is
        inserted RUNNING, started, in the same transaction (and both status events are
        shown, in order, once it is committed)."""
        sql, params = creation.statements[0]
        inserted = (sql, (*params[:4], _RUNNING, params[5], started, params[7], rec.seq + 1))
        self._fold(rec, creation, [inserted, *creation.statements[1:]], _RUNNING, apply, at=started)

    def finish(
        self,
        rec: ExecutionRecord,
        status: ExecutionStatus,
        *,
        error: dict[str, str] | None = None,
        result: tuple[str, bytes | Path | None, int] | None = None,
        result_json: str | None = None,
        force: bool = False,
    ) -> bool:
        """Move to a terminal status; False if the execution had already ended.

        ``result`` is ``(key, bytes or file, size)``: the result blob, stored in the
        same transaction as the status; ``(key, None, size)`` records a result kept
        elsewhere (on a Dask worker) until it is stored under ``key``. ``force``: even
        over an end that was asked for but never stored (the store's own failure of an
        execution).
        """
        if rec.latest.is_terminal and not force:
            return False
        error = storable(error) if error else None
        rec.target = status
        text = status.value
        finished = time.time()
        statements: list[tuple[str, tuple[Any, ...]]] = []
        result_key: str | None = None
        result_size = 0
        in_row: bytes | None = None  # a small result lives in the row (no blob row)
        if result is not None:
            result_key, content, result_size = result
            if isinstance(content, bytes) and result_size <= ROW_RESULT_BYTES:
                in_row = content
            elif content is not None:
                statements.append(self._blob_statement(result_key, content, result_size, rec.owner))
        ended = (
            json.dumps(error) if error else None,
            result_key,
            result_size,
            result_json,
            in_row,
            rec.seq + 1,
            rec.id,
        )

        def apply() -> None:
            rec.status = status
            rec.finished_at = finished
            rec.error = error
            rec.result_key = result_key
            rec.result_size = result_size
            rec.result_json = result_json

        starting = self._starting.pop(rec.id, None)
        if starting is not None:  # its start is not committed yet: one UPDATE says both
            op, started = starting
            statements.append((_END_STARTED, (text, started, finished, *ended)))
            self._fold(rec, op, statements, text, apply, at=finished)
            return True
        statements.append((_END, (text, finished, *ended)))
        self._event(rec, "status", text, None, statements, apply, at=finished)
        return True

    def _fold(
        self,
        rec: ExecutionRecord,
        into: Op,
        statements: list[tuple[str, tuple[Any, ...]]],
        text: str,
        apply: Callable[[], None],
        *,
        at: float,
    ) -> None:
        """Make the status event ``text`` of ``rec`` by changing the queued op ``into``
        (the execution's last): its statements become ``statements``, and once they are
        committed, its own event is shown, then this one."""
        rec.seq += 1
        ev = Event(seq=rec.seq, kind="status", data=text, stream=None, time=at)
        into.statements = statements
        before = into.apply

        def visible() -> None:
            if before is not None:
                before()
            apply()
            self._notify(rec, ev)

        into.apply = visible

    def log(self, rec: ExecutionRecord, stream: str, line: str) -> None:
        """Append one log line (ignored once the execution has ended)."""
        if rec.latest.is_terminal:
            return
        line = storable_text(line)

        def apply() -> None:
            rec.last_line = line

        seq, now = rec.seq + 1, time.time()
        self._event(
            rec,
            "log",
            line,
            stream,
            [
                (INSERT_EVENT, (rec.id, seq, "log", stream, line, now)),
                ("UPDATE executions SET seq = ? WHERE id = ?", (seq, rec.id)),
            ],
            apply,
            at=now,
            sheddable=True,
        )
