"""The v1 dialect: the runtime's extensions, put together from the parts of this package."""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Mapping
from typing import Any
from urllib.parse import quote

from anyio.abc import TaskGroup

from ..._dispatch import Slot, Spawner
from ..._errors import DaisiSerializationError
from ..._failures import json_of, replies, reply_stream, reraise
from ..._serialization import decode_result
from ..._transport import Transport
from ..._wire import MAX_WAIT_SECONDS, ExecutionStatus
from ..base import DaisiInfo, Dialect, RemoteState
from .blobs import Blobs
from .events import events
from .routes import STREAM_TIMEOUT, execution_path
from .submit import Submitter
from .wait import Waiter

__all__ = ["V1Dialect"]

LIST_PAGE = 500
"""The most executions ``GET /v1/executions`` answers at once."""


class V1Dialect(Dialect):
    """Talks to a server that advertises the v1 extensions."""

    name = "v1"

    def __init__(self, transport: Transport, capabilities: Mapping[str, Any]) -> None:
        super().__init__(transport)
        self.capabilities = dict(capabilities)
        runtime = capabilities.get("runtime")
        self.blobs = Blobs(transport, runtime if isinstance(runtime, dict) else None)
        self.spawner = Spawner()
        self.waiter = Waiter(transport, self.spawner, self._long_poll)
        self.submitter = Submitter(transport, self.spawner, self.waiter)

    def attach(self, task_group: TaskGroup | None) -> None:
        self.spawner.task_group = task_group

    async def aclose(self) -> None:
        await self.spawner.aclose()

    @replies
    async def connect(self, name_or_id: str) -> DaisiInfo:
        r = await self.request("GET", f"/v1/daisies/{quote(name_or_id, safe='')}")
        return DaisiInfo.from_json(json_of(r), name_or_id)

    # -- executions ----------------------------------------------------------------------
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
        # What @replies does, inline: a fan-out keeps this frame per call, not two.
        try:
            arguments = await self.blobs.encode(args)
            return await self.submitter.submit(
                daisi_id, endpoint, arguments, key, order, linger=linger
            )
        except BaseException as exc:
            reraise(exc, f"{self.api} (submit)")

    def result_slot(self, eid: str) -> Slot[RemoteState]:
        return self.waiter.slot(eid)

    def wait(self, daisi_id: str, eid: str) -> Coroutine[Any, Any, RemoteState]:
        return self.waiter.wait(eid)  # its coroutine itself: one frame less per waiting call

    @replies
    async def fetch(self, daisi_id: str, eid: str) -> RemoteState:
        r = await self.request("GET", execution_path(eid), params={"result": 1})
        return RemoteState.from_json(json_of(r))

    @replies
    async def _long_poll(self, eid: str) -> RemoteState:
        r = await self.request(
            "GET",
            execution_path(eid),
            params={"result": 1, "wait": MAX_WAIT_SECONDS},
            timeout=STREAM_TIMEOUT,
        )
        return RemoteState.from_json(json_of(r))

    @replies
    async def value(self, state: RemoteState) -> Any:
        result = state.result
        if result is None:
            state = await self.fetch("", state.id)
            result = state.result
        if result is None:
            raise DaisiSerializationError(f"execution {state.id} has no result")
        if result.get("encoding") == "json" or result.get("data") is not None:
            return decode_result(result, remote=self.blobs.remote_versions)
        return await self.blobs.download(state.id, int(result.get("size") or 0))

    # -- status, logs, cancel ------------------------------------------------------------
    @reply_stream
    async def status_stream(
        self, daisi_id: str, eid: str, last: ExecutionStatus | None
    ) -> AsyncIterator[ExecutionStatus]:
        async for kind, payload in events(self.transport, eid):
            if kind == "status":
                status = ExecutionStatus(payload["status"])
                if status is not last:
                    last = status
                    yield status

    @replies
    async def logs(self, daisi_id: str, eid: str) -> list[str]:
        lines: list[str] = []
        after = 0
        while True:
            r = await self.request(
                "GET", execution_path(eid, "/logs"), params={"after": after, "limit": 10_000}
            )
            chunk = json_of(r)["lines"]
            lines.extend(e["line"] for e in chunk)
            if len(chunk) < 10_000:
                return lines
            after = chunk[-1]["seq"]

    @reply_stream
    async def log_stream(self, daisi_id: str, eid: str) -> AsyncIterator[str]:
        async for kind, payload in events(self.transport, eid):
            if kind == "log":
                yield str(payload["line"])

    # -- by id alone, and the list --------------------------------------------------------
    @replies
    async def record(self, eid: str) -> dict[str, Any]:
        r = await self.request("GET", execution_path(eid))
        body = json_of(r)
        if not isinstance(body, dict) or "status" not in body:
            raise TypeError(f"not an execution object: {body!r:.200}")
        return body

    @replies
    async def executions(
        self, *, daisi: str | None, statuses: list[str], limit: int, before: str | None
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {}
        if daisi is not None:
            params["daisi"] = daisi
        if statuses:
            params["status"] = ",".join(statuses)
        while len(out) < limit:
            params["limit"] = min(limit - len(out), LIST_PAGE)
            if before is not None:
                params["before"] = before
            page = json_of(await self.request("GET", "/v1/executions", params=params))
            chunk = page["executions"]
            out.extend(dict(e) for e in chunk)
            before = page.get("next")
            if before is None or not chunk:
                break
        return out

    @replies
    async def catalogue(self) -> list[dict[str, Any]]:
        """Every Daisi the caller can see, as ``GET /v1/daisies`` describes them (with
        ``state``, ``broken``, ``endpoints`` and ``workers``), sorted by name."""
        daisies = json_of(await self.request("GET", "/v1/daisies"))["daisies"]
        out = [{**d, "id": str(d["id"]), "name": str(d["name"])} for d in daisies]
        return sorted(out, key=lambda d: str(d.get("name", "")).lower())

    @replies
    async def cancel(self, daisi_id: str, eid: str) -> RemoteState:
        r = await self.request("POST", execution_path(eid, "/cancel"), idempotent=True)
        state = RemoteState.from_json(json_of(r))
        if state.status.is_terminal:
            self.waiter.deliver(state)
        return state
