"""The caller's executions: a list (newest first) and a live feed of status changes.

Both show what the caller may see: their own executions (a caller with a token) or the
anonymous ones (a caller without), never those of a Daisi the caller can't see. Anonymous
executions stay readable by id to anyone (see :mod:`.auth`), but only anonymous callers
get them listed.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .._wire import ExecutionStatus
from .engine import Runtime
from .errors import bad_request
from .http import (
    KEEPALIVE,
    caller,
    dumps,
    execution_json,
    json_response,
    query_int,
    runtime,
    sse_response,
    woken,
)
from .store import Event, ExecutionRecord, valid_key

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "RunFilter", "feed", "list_executions", "run_filter"]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
FEED_BACKLOG = 10_000
"""Status changes held for one slow feed reader; past that its stream ends (it reloads)."""

_STATUSES = [s.value for s in ExecutionStatus if s is not ExecutionStatus.NOT_STARTED]


@dataclass(frozen=True)
class RunFilter:
    """Which executions a caller sees, and which of them they asked for.

    Example:
        >>> RunFilter(user=None, hidden=frozenset()).matches(rec)  # doctest: +SKIP
        True
    """

    user: str | None
    hidden: frozenset[str]
    """Ids of the Daisies the caller can't see."""
    daisi_id: str | None = None
    statuses: tuple[str, ...] = ()

    def matches(self, rec: ExecutionRecord, status: str | None = None) -> bool:
        """Whether ``rec`` (with ``status``, default its own) belongs in the list."""
        return (
            rec.owner == self.user
            and rec.daisi_id not in self.hidden
            and (self.daisi_id is None or rec.daisi_id == self.daisi_id)
            and (not self.statuses or (status or rec.status.value) in self.statuses)
        )


def run_filter(
    rt: Runtime, user: str | None, *, daisi: str | None, status: str | None
) -> RunFilter:
    """The filter of a list or feed request (``daisi``: a name or id; ``status``: one
    status or several, comma-separated); 404 for a Daisi the caller can't see, 400 for
    an unknown status."""
    hidden = frozenset(
        s.id
        for s in rt.registry.all()
        if not rt.auth.can_see_daisi(user, owner=s.owner, public=s.public)
    )
    daisi_id = rt.find_daisi(daisi, user).id if daisi else None
    statuses: tuple[str, ...] = ()
    if status:
        statuses = tuple(dict.fromkeys(s.strip().upper() for s in status.split(",")))
        unknown = [s for s in statuses if s not in _STATUSES]
        if unknown:
            raise bad_request(
                f"unknown status {unknown[0][:40]!r}; use one or more of {', '.join(_STATUSES)}",
                param="status",
            )
    return RunFilter(user=user, hidden=hidden, daisi_id=daisi_id, statuses=statuses)


def _request_filter(request: Request) -> tuple[Runtime, RunFilter]:
    rt = runtime(request)
    user = caller(request)
    q = request.query_params
    return rt, run_filter(rt, user, daisi=q.get("daisi"), status=q.get("status"))


def list_page(
    rt: Runtime, flt: RunFilter, *, limit: int, before: str | None
) -> list[ExecutionRecord]:
    """Up to ``limit`` executions matching ``flt``, newest first, older than ``before``
    (an execution id the caller sees; else 400)."""
    cursor: ExecutionRecord | None = None
    if before:
        cursor = rt.store.get(before) if valid_key(before) else None
        if cursor is None or not rt.auth.can_see_execution(flt.user, cursor.owner):
            raise bad_request(
                f"'before' must be the id of an execution you can see, not {before[:40]!r}",
                param="before",
            )
    return rt.store.list_executions(
        owner=flt.user,
        limit=limit,
        daisi_id=flt.daisi_id,
        statuses=flt.statuses,
        before=cursor,
        hidden_daisies=flt.hidden,
    )


async def list_executions(request: Request) -> Response:
    """``GET /v1/executions``: the caller's executions, newest first."""
    rt, flt = _request_filter(request)
    limit = query_int(request, "limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    records = list_page(rt, flt, limit=limit, before=request.query_params.get("before"))
    more = len(records) == limit
    return json_response(
        {
            "executions": [execution_json(rt, rec) for rec in records],
            "next": records[-1].id if more and records else None,
        }
    )


def _feed_event(body: dict[str, Any]) -> bytes:
    return f"event: status\ndata: {dumps(body)}\n\n".encode()


async def feed(request: Request) -> Response:
    """``GET /v1/events``: server-sent status changes of the executions the caller sees."""
    rt, flt = _request_filter(request)

    async def stream() -> AsyncIterator[bytes]:
        pending: collections.deque[dict[str, Any]] = collections.deque()
        wake = asyncio.Event()
        behind = False

        def on_event(rec: ExecutionRecord, ev: Event | None) -> None:
            nonlocal behind
            if ev is None or ev.kind != "status" or not flt.matches(rec, ev.data):
                return
            if len(pending) >= FEED_BACKLOG:
                behind = True  # too far behind: end the stream (the reader reloads)
            else:
                body = execution_json(rt, rec)  # its fields are this event's: just committed
                body["seq"] = ev.seq
                pending.append(body)
            wake.set()

        remove = rt.store.listen_all(on_event)
        try:
            yield b"retry: 2000\n: connected\n\n"
            while True:
                while pending and not behind:
                    yield _feed_event(pending.popleft())
                if behind:
                    yield b"event: overflow\ndata: {}\n\n"
                    return
                wake.clear()
                if not await woken(wake):
                    yield KEEPALIVE
        finally:
            remove()

    return sse_response(stream())
