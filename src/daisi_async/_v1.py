"""The v1 dialect: batched submissions, multiplexed waits, event streams, binary blobs."""

from __future__ import annotations

import json
import random
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import anyio
import anyio.lowlevel
import httpx

from ._config import RetryPolicy
from ._dispatch import Signal, Slot, Spawner
from ._errors import DaisiError, DaisiNotFoundError, DaisiProtocolError, DaisiSerializationError
from ._protocol import DaisiInfo, Protocol, Ref, RemoteState
from ._serialization import LOCAL_VERSIONS, decode_result, dumps, is_strict_json, loads
from ._transport import (
    Transport,
    error_from_response,
    json_of,
    replies,
    reply_stream,
    stream_errors,
    translate,
)
from ._wire import MAX_WAIT_SECONDS, ExecutionStatus

MAX_BATCH = 1000
MAX_STREAMS = 8
STREAM_TIMEOUT = httpx.Timeout(30.0, read=MAX_WAIT_SECONDS + 30.0, connect=10.0)
EVENT_TIMEOUT = httpx.Timeout(30.0, read=None, connect=10.0)


@dataclass(eq=False)
class _Submission:
    body: dict[str, Any]
    order: int
    submitted: Slot[RemoteState] = field(default_factory=Slot)
    result: Slot[RemoteState] | None = None


class _Results:
    """Where terminal states land; waiters wait on slots, streams fill them."""

    def __init__(self, proto: V1Protocol) -> None:
        self.proto = proto
        self.slots: weakref.WeakValueDictionary[str, Slot[RemoteState]] = (
            weakref.WeakValueDictionary()
        )
        self.signals: dict[str, Signal] = {}
        self.covered: set[str] = set()
        self.queue: list[str] = []
        self.flush_scheduled = False
        self.wait_streams: list[anyio.CancelScope] = []
        self.drops = 0  # consecutive dropped wait streams

    def slot(self, eid: str) -> Slot[RemoteState]:
        slot = self.slots.get(eid)
        if slot is None:
            slot = Slot()
            self.slots[eid] = slot
        return slot

    def deliver(self, state: RemoteState) -> None:
        self.covered.discard(state.id)
        slot = self.slots.get(state.id)
        if slot is not None:
            slot.set(state)
        self._wake(state.id)

    def fail(self, eid: str, error: BaseException) -> None:
        self.covered.discard(eid)
        slot = self.slots.get(eid)
        if slot is not None:
            slot.fail(error)
        self._wake(eid)

    def uncover(self, ids: list[str]) -> None:
        for eid in ids:
            self.covered.discard(eid)
            self._wake(eid)

    def _wake(self, eid: str) -> None:
        sig = self.signals.pop(eid, None)
        if sig is not None:
            sig.fire()

    async def wait(self, eid: str) -> RemoteState:
        slot = self.slot(eid)
        spawner = self.proto.spawner
        while not slot.done:
            if eid not in self.covered:
                if not spawner.can_spawn():
                    state = await self.proto.fetch(eid, wait=MAX_WAIT_SECONDS)
                    if state.status.is_terminal:
                        slot.set(state)
                    continue
                self.covered.add(eid)
                self.queue.append(eid)
                if not self.flush_scheduled:
                    self.flush_scheduled = True
                    spawner.spawn(self._flush)
            sig = self.signals.get(eid)
            if sig is None:
                sig = self.signals[eid] = Signal()
            await sig.wait()
        return slot.value()

    async def _flush(self) -> None:
        await anyio.lowlevel.checkpoint()
        self.flush_scheduled = False
        ids, self.queue = self.queue, []
        ids = [i for i in dict.fromkeys(ids) if i in self.slots and not self.slots[i].done]
        if not ids:
            return
        if len(self.wait_streams) >= MAX_STREAMS:
            # Too many open waits: merge them all into the new one.
            for scope in self.wait_streams:
                scope.cancel()
        for start in range(0, len(ids), 5000):
            self.proto.spawner.spawn(self._stream, ids[start : start + 5000])

    async def _stream(self, ids: list[str]) -> None:
        pending = set(ids)
        with anyio.CancelScope() as scope:
            self.wait_streams.append(scope)
            try:
                async with self.proto.transport.stream(
                    "POST",
                    "/v1/executions/wait",
                    json={"ids": ids, "timeout": MAX_WAIT_SECONDS},
                    timeout=STREAM_TIMEOUT,
                ) as response:
                    with stream_errors(response):
                        async for line in response.aiter_lines():
                            self._on_line(line, pending)
            except DaisiError as exc:
                policy = self.proto.transport.settings.retries
                if _dropped(exc) and self.drops < policy.attempts:
                    # The connection dropped mid-way: back off, then waiters cover again.
                    self.drops += 1
                    await anyio.sleep(_backoff(policy, self.drops))
                else:
                    for eid in list(pending):
                        self.fail(eid, exc)
                    pending.clear()
            except Exception as exc:  # never let a background task crash the group
                err = translate(exc, self.proto.transport.api + "/v1/executions/wait")
                for eid in list(pending):
                    self.fail(eid, err)
                pending.clear()
            finally:
                self.wait_streams.remove(scope)
                self.uncover(list(pending))

    def _on_line(self, line: str, pending: set[str]) -> None:
        if not line:
            return
        msg = json.loads(line)
        self.drops = 0
        kind = msg.get("type")
        if kind == "done":
            state = RemoteState.from_json(msg["execution"])
            pending.discard(state.id)
            self.deliver(state)
        elif kind == "error":
            eid = str(msg.get("id"))
            pending.discard(eid)
            self.fail(eid, DaisiNotFoundError(str(msg["error"].get("message")), status_code=404))


def _path(eid: str, rest: str = "") -> str:
    """The route of one execution (the id is quoted: it may come from the caller)."""
    return f"/v1/executions/{quote(eid, safe='')}{rest}"


def _backoff(policy: RetryPolicy, attempt: int) -> float:
    """Full-jitter exponential backoff, as the transport uses."""
    return random.uniform(0, min(policy.max_backoff, policy.backoff * 2 ** (attempt - 1)))


def _dropped(exc: DaisiError) -> bool:
    cause = exc.__cause__
    return isinstance(cause, (httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout))


class V1Protocol(Protocol):
    """Talks to a server that advertises the v1 extensions."""

    name = "v1"

    def __init__(self, transport: Transport, capabilities: Mapping[str, Any]) -> None:
        super().__init__(transport)
        self.capabilities = dict(capabilities)
        self.remote_versions: dict[str, str] | None = capabilities.get("runtime")
        self.spawner = Spawner()
        self.results = _Results(self)
        self._queue: list[_Submission] = []
        self._flush_scheduled = False
        self._submit_streams = 0

    async def aclose(self) -> None:
        await self.spawner.aclose()

    @replies
    async def connect(self, name_or_id: str) -> DaisiInfo:
        r = await self.transport.request("GET", f"/v1/daisies/{quote(name_or_id, safe='')}")
        return DaisiInfo.from_json(json_of(r), name_or_id)

    # -- arguments -----------------------------------------------------------------------
    async def encode(self, args: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Arguments as v1 Argument objects; non-JSON values are uploaded as dill blobs."""
        out: dict[str, dict[str, Any]] = {}
        for name, value in args.items():
            if isinstance(value, Ref):
                out[name] = {"execution": value.execution_id}
            elif is_strict_json(value):
                out[name] = {"value": value}
            else:
                out[name] = {"blob": await self.upload(dumps(value, param=name))}
        return out

    @replies
    async def upload(self, data: bytes | memoryview) -> str:
        """Store dill bytes on the server; returns the blob key."""
        r = await self.transport.request(
            "POST",
            "/v1/blobs",
            content=data,
            headers={
                "content-type": "application/octet-stream",
                "x-daisi-python": LOCAL_VERSIONS["python"],
                "x-daisi-dill": LOCAL_VERSIONS["dill"],
            },
            idempotent=True,
        )
        return str(json_of(r)["key"])

    # -- submission ----------------------------------------------------------------------
    @replies
    async def submit(
        self, daisi_id: str, endpoint: str, args: Mapping[str, Any], key: str, *, order: int = 0
    ) -> RemoteState:
        arguments = await self.encode(args)
        if not self.spawner.can_spawn():
            r = await self.transport.request(
                "POST",
                f"/v1/daisies/{daisi_id}/executions",
                json={"endpoint": endpoint, "arguments": arguments},
                headers={"idempotency-key": key},
                idempotent=True,
            )
            return RemoteState.from_json(json_of(r))
        sub = _Submission(
            {
                "daisi_id": daisi_id,
                "endpoint": endpoint,
                "arguments": arguments,
                "idempotency_key": key,
            },
            order,
        )
        self._queue.append(sub)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.spawner.spawn(self._flush)
        state = await sub.submitted.wait()
        return state

    def result_slot(self, eid: str) -> Slot[RemoteState]:
        """The slot where the execution's terminal state will land."""
        return self.results.slot(eid)

    async def _flush(self) -> None:
        await anyio.lowlevel.checkpoint()
        self._flush_scheduled = False
        queue, self._queue = sorted(self._queue, key=lambda s: s.order), []
        batches = [queue[i : i + MAX_BATCH] for i in range(0, len(queue), MAX_BATCH)]
        for batch in batches[1:]:
            self.spawner.spawn(self._send, batch)
        if batches:
            await self._send(batches[0])  # the first batch goes out from this task

    async def _send(self, batch: list[_Submission]) -> None:
        stream = self._submit_streams < MAX_STREAMS
        body = {"executions": [s.body for s in batch]}
        waiting: set[str] = set()
        self._submit_streams += stream
        attempts = max(1, self.transport.settings.retries.attempts)
        try:
            for attempt in range(1, attempts + 1):
                try:
                    await self._send_once(batch, body, waiting, stream=stream)
                    if not all(s.submitted.done for s in batch):
                        raise DaisiProtocolError(
                            f"the reply from {self.transport.api}/v1/executions ended "
                            "without the submitted executions"
                        )
                    return
                except DaisiError as exc:
                    # A drop before the "submitted" line: resend the same batch. Its
                    # idempotency keys make the server answer with what it created.
                    submitted = all(s.submitted.done for s in batch)
                    if submitted or not _dropped(exc) or attempt == attempts:
                        raise
                    await anyio.sleep(_backoff(self.transport.settings.retries, attempt))
        except BaseException as exc:
            err = translate(exc, self.transport.api + "/v1/executions")
            for s in batch:
                s.submitted.fail(err if isinstance(err, Exception) else DaisiError(repr(err)))
            if not isinstance(exc, Exception):
                raise
        finally:
            self._submit_streams -= stream
            self.results.uncover(list(waiting))

    async def _send_once(
        self, batch: list[_Submission], body: dict[str, Any], waiting: set[str], *, stream: bool
    ) -> None:
        if not stream:
            r = await self.transport.request("POST", "/v1/executions", json=body, idempotent=True)
            with stream_errors(r):
                self._on_submitted(batch, json_of(r)["results"], waiting)
            return
        async with self.transport.stream(
            "POST", "/v1/executions", params={"wait": MAX_WAIT_SECONDS}, json=body,
            timeout=STREAM_TIMEOUT,
        ) as response:  # fmt: skip
            with stream_errors(response):
                async for line in response.aiter_lines():
                    if not line:
                        continue
                    msg = json.loads(line)
                    if msg["type"] == "submitted":
                        self._on_submitted(batch, msg["results"], waiting)
                    elif msg["type"] == "done":
                        state = RemoteState.from_json(msg["execution"])
                        waiting.discard(state.id)
                        self.results.deliver(state)

    def _on_submitted(
        self, batch: list[_Submission], results: list[dict[str, Any]], waiting: set[str]
    ) -> None:
        for sub, res in zip(batch, results, strict=True):
            if "error" in res:
                sub.submitted.fail(_item_error(res["error"]))
                continue
            state = RemoteState.from_json(res["execution"])
            sub.result = self.results.slot(state.id)
            if not state.status.is_terminal:
                self.results.covered.add(state.id)
                waiting.add(state.id)
            sub.submitted.set(state)

    # -- waiting and results --------------------------------------------------------------
    async def wait(self, eid: str) -> RemoteState:
        return await self.results.wait(eid)

    @replies
    async def fetch(self, eid: str, *, wait: float = 0) -> RemoteState:
        params: dict[str, Any] = {"result": 1}
        timeout: httpx.Timeout | None = None
        if wait:
            params["wait"] = wait
            timeout = STREAM_TIMEOUT
        r = await self.transport.request("GET", _path(eid), params=params, timeout=timeout)
        return RemoteState.from_json(json_of(r))

    @replies
    async def value(self, state: RemoteState) -> Any:
        result = state.result
        if result is None:
            state = await self.fetch(state.id)
            result = state.result
        if result is None:
            raise DaisiSerializationError(f"execution {state.id} has no result")
        if result.get("encoding") == "json" or result.get("data") is not None:
            return decode_result(result, remote=self.remote_versions)
        return await self.download(state.id, int(result.get("size") or 0))

    async def download(self, eid: str, size: int) -> Any:
        """Stream a large result into one buffer (no intermediate copies) and open it."""
        async with self.transport.stream("GET", _path(eid, "/result")) as response:
            length = int(response.headers.get("content-length") or size or 0)
            buf = bytearray(length)
            view = memoryview(buf)
            pos = 0
            with stream_errors(response):
                async for chunk in response.aiter_raw(1 << 20):
                    end = pos + len(chunk)
                    if end > length:  # longer than announced: grow (rare)
                        view.release()
                        buf.extend(bytes(end - length))
                        length = end
                        view = memoryview(buf)
                    view[pos:end] = chunk
                    pos = end
            view.release()
            del buf[pos:]
            if response.headers.get("content-type", "").startswith("application/json"):
                return json.loads(buf)
        return loads(memoryview(buf), remote=self.remote_versions)

    # -- status and logs -----------------------------------------------------------------
    async def _events(self, eid: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Every event of the execution, resuming after dropped connections."""
        last = 0
        drops = 0
        while True:
            try:
                async with self.transport.stream(
                    "GET",
                    _path(eid, "/events"),
                    headers={"last-event-id": str(last)},
                    timeout=EVENT_TIMEOUT,
                ) as response:
                    event, data = "", ""
                    with stream_errors(response):
                        async for line in response.aiter_lines():
                            if line.startswith("data:"):
                                data = line[5:].strip()
                            elif line.startswith("event:"):
                                event = line[6:].strip()
                            elif line == "" and data:
                                payload = json.loads(data)
                                last = int(payload.get("seq", last))
                                drops = 0
                                yield event, payload
                                if (
                                    event == "status"
                                    and ExecutionStatus(payload["status"]).is_terminal
                                ):
                                    return
                                event, data = "", ""
                return
            except DaisiError as exc:
                drops += 1
                policy = self.transport.settings.retries
                if not _dropped(exc) or drops > policy.attempts:
                    raise
                await anyio.sleep(_backoff(policy, drops))

    @reply_stream
    async def status_stream(
        self, eid: str, last: ExecutionStatus | None
    ) -> AsyncIterator[ExecutionStatus]:
        async for event, payload in self._events(eid):
            if event == "status":
                status = ExecutionStatus(payload["status"])
                if status is not last:
                    last = status
                    yield status

    @replies
    async def logs(self, eid: str) -> list[str]:
        lines: list[str] = []
        after = 0
        while True:
            r = await self.transport.request(
                "GET", _path(eid, "/logs"), params={"after": after, "limit": 10_000}
            )
            chunk = json_of(r)["lines"]
            lines.extend(e["line"] for e in chunk)
            if len(chunk) < 10_000:
                return lines
            after = chunk[-1]["seq"]

    @reply_stream
    async def log_stream(self, eid: str) -> AsyncIterator[str]:
        async for event, payload in self._events(eid):
            if event == "log":
                yield str(payload["line"])

    @replies
    async def cancel(self, eid: str) -> RemoteState:
        r = await self.transport.request("POST", _path(eid, "/cancel"), idempotent=True)
        state = RemoteState.from_json(json_of(r))
        if state.status.is_terminal:
            self.results.deliver(state)
        return state


def _item_error(err: Mapping[str, Any]) -> DaisiError:
    status = int(err.get("status", 400))
    fake = httpx.Response(status, json={"error": dict(err)})
    return error_from_response(fake)
