"""The legacy dialect: the historical pydaisi routes, polled adaptively, base64 payloads.

A server without ``/capabilities`` is taken for a legacy Daisi platform *on probation*:
until one of its replies has the Daisi shape, an error reply that is not a Daisi error
object (an HTML 404 page, say) means the URL is not a Daisi server at all, and raises
:class:`~.._errors.DaisiProtocolError` naming it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import anyio
import httpx

from .._errors import DaisiProtocolError, DaisiSerializationError
from .._failures import RETRY_STATUSES, error_body, error_from_response, json_of, replies
from .._failures import reply_stream as _reply_stream
from .._serialization import dumps, is_strict_json, loads
from .._transport import Transport
from .._values import is_uuid
from .._wire import LOOKUP_PREFIX, ExecutionStatus
from .base import DaisiInfo, Dialect, Ref, RemoteState

__all__ = ["LegacyDialect", "error_from_traceback"]

POLL_FIRST = 0.005
POLL_MAX = 0.5
POLL_GROWTH = 1.5
_LAST_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")
_CLIENT_ERRORS = frozenset(range(400, 500)) - RETRY_STATUSES


class _Poll:
    """Adaptive polling: quick at first, slower while nothing changes."""

    __slots__ = ("delay",)

    def __init__(self) -> None:
        self.delay = POLL_FIRST

    def reset(self) -> None:
        self.delay = POLL_FIRST

    async def sleep(self) -> None:
        await anyio.sleep(self.delay)
        self.delay = min(POLL_MAX, self.delay * POLL_GROWTH)


def _legacy_status(value: Any) -> ExecutionStatus:
    if not isinstance(value, str):
        raise DaisiProtocolError(f"an execution status must be a string, not {value!r}")
    try:
        return ExecutionStatus(value)
    except ValueError:
        return ExecutionStatus.RUNNING  # e.g. "STARTED" from older servers


def error_from_traceback(tb: str) -> dict[str, str]:
    """A v1-style error object from a legacy traceback text.

    Example:
        >>> error_from_traceback("Traceback ...\\nZeroDivisionError: division by zero")["type"]
        'builtins.ZeroDivisionError'
    """
    last = next((ln for ln in reversed(tb.strip().splitlines()) if ln and not ln[0].isspace()), "")
    m = _LAST_LINE.match(last)
    exc_type, message = "Error", last
    if m:
        name = m.group(1)
        exc_type = name if "." in name else f"builtins.{name}"
        message = last[len(name) :].lstrip(": ").strip()
    return {"type": exc_type, "message": message, "traceback": tb}


def _has_lookup_string(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith(LOOKUP_PREFIX)
    if isinstance(value, list):
        return any(_has_lookup_string(v) for v in value)
    if isinstance(value, dict):
        return any(_has_lookup_string(v) for v in value.values())
    return False


def _kind(response: httpx.Response) -> str:
    ctype = response.headers.get("content-type", "no content type").split(";")[0]
    return f"{response.status_code} ({ctype})"


class LegacyDialect(Dialect):
    """Talks to a server that only has the historical routes (polling, base64).

    ``probation`` says why v1 was not used (what ``/capabilities`` answered); while it
    is set, a reply without the Daisi shape raises :class:`DaisiProtocolError`.
    """

    name = "legacy"

    def __init__(self, transport: Transport, *, probation: str | None = None) -> None:
        super().__init__(transport)
        self.probation = probation

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request; on probation, an error reply must be a Daisi error object."""
        if self.probation is None:
            return await self.transport.request(method, path, **kwargs)
        r = await self.transport.request(method, path, allow=_CLIENT_ERRORS, **kwargs)
        if r.is_success:
            return r
        try:
            body = r.json()
        except ValueError:
            body = None
        if error_body(body) is None:
            raise DaisiProtocolError(
                f"{self.transport.base_url} does not look like a Daisi runtime: "
                f"{self.probation}, and {method} {r.request.url} answered {_kind(r)}. "
                "Is base_url (or DAISI_BASE_URL) the address of `daisi serve`?"
            )
        self.probation = None  # a Daisi error object: a Daisi server after all
        raise error_from_response(r)

    @replies
    async def connect(self, name_or_id: str) -> DaisiInfo:
        if is_uuid(name_or_id):
            r = await self.request("GET", f"/pebbles/{name_or_id}")
            body = dict(json_of(r))
            body.setdefault("id", name_or_id)
            if "endpoints" not in body:
                eps = await self.request("GET", f"/pebbles/{name_or_id}/endpoints")
                body["endpoints"] = json_of(eps)
        else:
            r = await self.request("GET", "/daisies/connect", params={"name": name_or_id})
            body = json_of(r)
        info = DaisiInfo.from_json(body, name_or_id)
        self.probation = None
        return info

    async def catalogue(self) -> list[dict[str, Any]]:
        found = await super().catalogue()
        self.probation = None
        return found

    # -- submitting ----------------------------------------------------------------------
    @replies
    async def encode(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """JSON values inline; everything else (and ``lookup:`` strings) via the pickle route."""
        out: dict[str, Any] = {}
        for name, value in args.items():
            if isinstance(value, Ref):
                out[name] = LOOKUP_PREFIX + value.execution_id
            elif is_strict_json(value) and not _has_lookup_string(value):
                out[name] = value
            else:
                data = base64.b64encode(dumps(value, param=name)).decode("ascii")
                r = await self.request(
                    "POST", "/pebbles/pickle", json={"data": data}, idempotent=True
                )
                out[name] = LOOKUP_PREFIX + r.text.strip().strip('"')
        return out

    @replies
    async def submit(
        self,
        daisi_id: str,
        endpoint: str,
        args: Mapping[str, Any],
        key: str,
        *,
        order: int = 0,
        linger: bool = False,
    ) -> RemoteState:
        body = await self.encode(args)
        r = await self.request(
            "POST", f"/pebbles/{daisi_id}/executions/{endpoint}", json=body, idempotent=False
        )
        return RemoteState(id=str(json_of(r)["id"]), status=ExecutionStatus.QUEUED)

    # -- waiting and results -------------------------------------------------------------
    @staticmethod
    def _route(daisi_id: str, eid: str, rest: str) -> str:
        return f"/pebbles/{daisi_id}/executions/{quote(eid, safe='')}{rest}"

    async def _results(self, daisi_id: str, eid: str) -> RemoteState:
        r = await self.request(
            "GET",
            self._route(daisi_id, eid, "/results"),
            params={"download": "true", "all_fields": "true"},
        )
        body = json_of(r)
        if not isinstance(body, dict) or "status" not in body:
            body = {"status": "FINISHED", "results": body}
        status = _legacy_status(body["status"])
        state = RemoteState(id=eid, status=status)
        if status is ExecutionStatus.FINISHED:
            state.result = {"encoding": "dill", "data": body.get("results")}
        elif status is ExecutionStatus.FAILED:
            state.error = self._failure(body.get("results"))
        return state

    @staticmethod
    def _failure(results: Any) -> dict[str, str]:
        tb = ""
        if isinstance(results, str):
            try:
                obj = loads(base64.b64decode(results))
            except (DaisiSerializationError, ValueError):
                obj = results
            if isinstance(obj, dict) and obj.get("label") == "ERROR":
                tb = str(obj.get("data") or "")
            else:
                tb = str(obj)
        return error_from_traceback(tb)

    @replies
    async def wait(self, daisi_id: str, eid: str) -> RemoteState:
        poll = _Poll()
        while True:
            state = await self._results(daisi_id, eid)
            if state.status.is_terminal:
                return state
            await poll.sleep()

    @replies
    async def fetch(self, daisi_id: str, eid: str) -> RemoteState:
        return await self._results(daisi_id, eid)

    @replies
    async def value(self, state: RemoteState) -> Any:
        data = (state.result or {}).get("data")
        if not isinstance(data, str):
            raise DaisiSerializationError(f"execution {state.id} has no downloadable result")
        return loads(base64.b64decode(data))

    # -- status and logs -----------------------------------------------------------------
    async def _status(self, daisi_id: str, eid: str) -> ExecutionStatus:
        r = await self.request("GET", self._route(daisi_id, eid, "/status"))
        return _legacy_status(json_of(r))

    @_reply_stream
    async def status_stream(
        self, daisi_id: str, eid: str, last: ExecutionStatus | None
    ) -> AsyncIterator[ExecutionStatus]:
        poll = _Poll()
        while True:
            status = await self._status(daisi_id, eid)
            if status is not last:
                last = status
                yield status
            if status.is_terminal:
                return
            await poll.sleep()

    @replies
    async def logs(self, daisi_id: str, eid: str) -> list[str]:
        r = await self.request("GET", self._route(daisi_id, eid, "/logs"))
        return [str(x) for x in json_of(r)]

    @_reply_stream
    async def log_stream(self, daisi_id: str, eid: str) -> AsyncIterator[str]:
        seen = 0
        poll = _Poll()
        while True:
            status = await self._status(daisi_id, eid)
            lines = await self.logs(daisi_id, eid)
            for line in lines[seen:]:
                yield line
                poll.reset()
            seen = max(seen, len(lines))
            if status.is_terminal:
                return
            await poll.sleep()
