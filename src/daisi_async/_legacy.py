"""The legacy dialect (the historical pydaisi routes), with adaptive non-blocking polling."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import anyio

from ._errors import DaisiError, DaisiNotFoundError, DaisiProtocolError, DaisiSerializationError
from ._protocol import DaisiInfo, Protocol, Ref, RemoteState
from ._serialization import dumps, is_strict_json, loads
from ._transport import json_of, replies, reply_stream
from ._wire import LOOKUP_PREFIX, ExecutionStatus

POLL_FIRST = 0.005
POLL_MAX = 0.5
POLL_GROWTH = 1.5
_LAST_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _legacy_status(value: Any) -> ExecutionStatus:
    if not isinstance(value, str):
        raise DaisiProtocolError(f"an execution status must be a string, not {value!r}")
    try:
        return ExecutionStatus(value)
    except ValueError:
        return ExecutionStatus.RUNNING  # e.g. "STARTED" from older servers


def error_from_traceback(tb: str) -> dict[str, str]:
    """A v1-style error object from a legacy traceback text."""
    last = next((ln for ln in reversed(tb.strip().splitlines()) if ln and not ln[0].isspace()), "")
    m = _LAST_LINE.match(last)
    exc_type, message = "Error", last
    if m:
        name = m.group(1)
        exc_type = name if "." in name else f"builtins.{name}"
        message = last[len(name) :].lstrip(": ").strip()
    return {"type": exc_type, "message": message, "traceback": tb}


class LegacyProtocol(Protocol):
    """Talks to a server that only has the historical routes (polling, base64)."""

    name = "legacy"

    def __init__(self, transport: Any) -> None:
        super().__init__(transport)
        self._daisi_of: dict[str, str] = {}

    @replies
    async def connect(self, name_or_id: str) -> DaisiInfo:
        if _is_uuid(name_or_id):
            r = await self.transport.request("GET", f"/pebbles/{name_or_id}")
            body = dict(json_of(r))
            body.setdefault("id", name_or_id)
            if "endpoints" not in body:
                eps = await self.transport.request("GET", f"/pebbles/{name_or_id}/endpoints")
                body["endpoints"] = json_of(eps)
            return DaisiInfo.from_json(body, name_or_id)
        r = await self.transport.request("GET", "/daisies/connect", params={"name": name_or_id})
        return DaisiInfo.from_json(json_of(r), name_or_id)

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
                r = await self.transport.request(
                    "POST", "/pebbles/pickle", json={"data": data}, idempotent=True
                )
                out[name] = LOOKUP_PREFIX + r.text.strip().strip('"')
        return out

    @replies
    async def submit(
        self, daisi_id: str, endpoint: str, args: Mapping[str, Any], key: str, *, order: int = 0
    ) -> RemoteState:
        body = await self.encode(args)
        r = await self.transport.request(
            "POST", f"/pebbles/{daisi_id}/executions/{endpoint}", json=body, idempotent=False
        )
        eid = str(json_of(r)["id"])
        self._daisi_of[eid] = daisi_id
        return RemoteState(id=eid, status=ExecutionStatus.QUEUED)

    def bind(self, eid: str, daisi_id: str) -> None:
        """Remember the Daisi of an execution (legacy routes are nested under it)."""
        self._daisi_of[eid] = daisi_id

    def _base(self, eid: str) -> str:
        daisi_id = self._daisi_of.get(eid)
        if daisi_id is None:
            raise DaisiNotFoundError(f"unknown execution {eid!r} for this Daisi")
        return f"/pebbles/{daisi_id}/executions/{quote(eid, safe='')}"

    async def _results(self, eid: str) -> RemoteState:
        r = await self.transport.request(
            "GET", self._base(eid) + "/results", params={"download": "true", "all_fields": "true"}
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
    async def wait(self, eid: str) -> RemoteState:
        delay = POLL_FIRST
        while True:
            state = await self._results(eid)
            if state.status.is_terminal:
                return state
            await anyio.sleep(delay)
            delay = min(POLL_MAX, delay * POLL_GROWTH)

    @replies
    async def fetch(self, eid: str) -> RemoteState:
        return await self._results(eid)

    @replies
    async def value(self, state: RemoteState) -> Any:
        result = state.result or {}
        data = result.get("data")
        if not isinstance(data, str):
            raise DaisiSerializationError(f"execution {state.id} has no downloadable result")
        return loads(base64.b64decode(data))

    async def _status(self, eid: str) -> ExecutionStatus:
        r = await self.transport.request("GET", self._base(eid) + "/status")
        return _legacy_status(json_of(r))

    @reply_stream
    async def status_stream(
        self, eid: str, last: ExecutionStatus | None
    ) -> AsyncIterator[ExecutionStatus]:
        delay = POLL_FIRST
        while True:
            status = await self._status(eid)
            if status is not last:
                last = status
                yield status
            if status.is_terminal:
                return
            await anyio.sleep(delay)
            delay = min(POLL_MAX, delay * POLL_GROWTH)

    @replies
    async def logs(self, eid: str) -> list[str]:
        r = await self.transport.request("GET", self._base(eid) + "/logs")
        return [str(x) for x in json_of(r)]

    @reply_stream
    async def log_stream(self, eid: str) -> AsyncIterator[str]:
        seen = 0
        delay = POLL_FIRST
        while True:
            status = await self._status(eid)
            lines = await self.logs(eid)
            for line in lines[seen:]:
                yield line
                delay = POLL_FIRST
            seen = max(seen, len(lines))
            if status.is_terminal:
                return
            await anyio.sleep(delay)
            delay = min(POLL_MAX, delay * POLL_GROWTH)

    async def cancel(self, eid: str) -> RemoteState:
        raise DaisiError("this server does not support cancelling executions (legacy protocol)")


def _has_lookup_string(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith(LOOKUP_PREFIX)
    if isinstance(value, list):
        return any(_has_lookup_string(v) for v in value)
    if isinstance(value, dict):
        return any(_has_lookup_string(v) for v in value.values())
    return False
