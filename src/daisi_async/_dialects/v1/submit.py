"""Batched submissions: executions started in the same turn of the loop share a request.

A batch goes out as ``POST /v1/executions?wait=...``, a stream that first says what
was created (``submitted``) and then reports executions that end while it is open
(``done``), which saves most waits their own request. A batch dropped before its
``submitted`` line is resent as it was: its idempotency keys make the server answer with
what it created the first time.

A submission alone in its turn whose caller waits for the end next (``await
d.compute(1, 2)``) goes out as the one-execution request instead, ``POST
/v1/daisies/{id}/executions?wait=``:data:`LINGER` (same idempotency key): a quick call
then ends in that one reply, with no stream to open and read (a sequential call -12%);
a longer one is answered after :data:`LINGER` seconds and waited for as usual.
"""

from __future__ import annotations

import json
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import anyio
import anyio.lowlevel

from ..._dispatch import Slot, Spawner
from ..._errors import DaisiError, DaisiProtocolError
from ..._failures import dropped, error_for_status, json_of, translate
from ..._log import logger
from ..._retry import retry_call
from ..._transport import Transport, stream_errors
from ..._wire import MAX_WAIT_SECONDS
from ..base import RemoteState
from .routes import MAX_BATCH, MAX_STREAMS, STREAM_TIMEOUT
from .wait import Waiter

__all__ = ["Submitter"]

BATCH_PATH = "/v1/executions"
_JSON = {"content-type": "application/json"}
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
LINGER = 0.05
"""Seconds a lone submission's reply may wait for the end of a quick call."""


@dataclass(eq=False)
class _Submission:
    body: str  # its item of a batch, as JSON text: no dicts for the collector to walk
    order: int
    linger: bool = False
    submitted: Slot[RemoteState] = field(default_factory=Slot)
    result: Slot[RemoteState] | None = None  # held so that an early "done" is kept


class Submitter:
    """Sends submissions, batched where background tasks can run."""

    def __init__(self, transport: Transport, spawner: Spawner, waiter: Waiter) -> None:
        self.transport = transport
        self.spawner = spawner
        self.waiter = waiter
        self._queue: list[_Submission] = []
        self._flush_scheduled = False
        self._streams = 0
        self._told_fallback = False

    def submit(
        self,
        daisi_id: str,
        endpoint: str,
        arguments: dict[str, dict[str, Any]],
        key: str,
        order: int,
        *,
        linger: bool = False,
    ) -> Coroutine[Any, Any, RemoteState]:
        """Create one execution (arguments already encoded); ``linger``: see the module
        docstring. Queued at once; the coroutine returned waits for the acknowledgement
        (the submission's own wait: a fan-out keeps no frame of this method per call)."""
        if not self.spawner.can_spawn():  # no background task: one request of its own
            return self._submit_alone(daisi_id, endpoint, arguments, key)
        body = _encode(
            {
                "daisi_id": daisi_id,
                "endpoint": endpoint,
                "arguments": arguments,
                "idempotency_key": key,
            }
        )
        sub = _Submission(body, order, linger)
        self._queue.append(sub)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.spawner.spawn(self._flush)
        return sub.submitted.wait()

    async def _submit_alone(
        self, daisi_id: str, endpoint: str, arguments: dict[str, dict[str, Any]], key: str
    ) -> RemoteState:
        if not self._told_fallback:
            self._told_fallback = True
            logger.info("no background tasks here: one request per submission")
        r = await self.transport.request(
            "POST",
            f"/v1/daisies/{daisi_id}/executions",
            json={"endpoint": endpoint, "arguments": arguments},
            headers={"idempotency-key": key},
            idempotent=True,
        )
        return RemoteState.from_json(json_of(r))

    async def _flush(self) -> None:
        await anyio.lowlevel.checkpoint()
        self._flush_scheduled = False
        queue, self._queue = sorted(self._queue, key=lambda s: s.order), []
        if len(queue) == 1 and queue[0].linger:
            await self._send_alone(queue[0])
            return
        batches = [queue[i : i + MAX_BATCH] for i in range(0, len(queue), MAX_BATCH)]
        for batch in batches[1:]:
            self.spawner.spawn(self._send, batch)
        if batches:
            await self._send(batches[0])  # the first batch goes out from this task

    async def _send_alone(self, sub: _Submission) -> None:
        body = json.loads(sub.body)
        path = f"/v1/daisies/{quote(body['daisi_id'], safe='')}/executions"
        try:
            r = await self.transport.request(
                "POST",
                path,
                params={"wait": LINGER},
                json={"endpoint": body["endpoint"], "arguments": body["arguments"]},
                headers={"idempotency-key": body["idempotency_key"]},
                idempotent=True,
            )
            state = RemoteState.from_json(json_of(r))
        except BaseException as exc:
            _fail([sub], exc, self.transport.api + path)
            return
        sub.result = self.waiter.slot(state.id)
        if state.status.is_terminal:
            self.waiter.deliver(state)
        sub.submitted.set(state)

    async def _send(self, batch: list[_Submission]) -> None:
        stream = self._streams < MAX_STREAMS
        body = ('{"executions":[' + ",".join(s.body for s in batch) + "]}").encode()
        waiting: set[str] = set()
        self._streams += stream

        def resend(exc: BaseException) -> bool:
            return dropped(exc) and not all(s.submitted.done for s in batch)

        async def once() -> None:
            await self._send_once(batch, body, waiting, stream=stream)
            if not all(s.submitted.done for s in batch):
                raise DaisiProtocolError(
                    f"the reply from {self.transport.api}{BATCH_PATH} ended "
                    "without the submitted executions"
                )

        try:
            await retry_call(
                once,
                self.transport.settings.retries,
                retry=resend,
                what=f"a batch of {len(batch)} submissions",
            )
        except BaseException as exc:
            _fail(batch, exc, self.transport.api + BATCH_PATH)
        finally:
            self._streams -= stream
            self.waiter.uncover(list(waiting))

    async def _send_once(
        self, batch: list[_Submission], body: bytes, waiting: set[str], *, stream: bool
    ) -> None:
        if not stream:
            r = await self.transport.request(
                "POST", BATCH_PATH, content=body, headers=_JSON, idempotent=True
            )
            with stream_errors(r):
                self._on_submitted(batch, json_of(r)["results"], waiting)
            return
        async with self.transport.stream(
            "POST", BATCH_PATH, params={"wait": MAX_WAIT_SECONDS}, content=body,
            headers=_JSON, timeout=STREAM_TIMEOUT,
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
                        self.waiter.deliver(state)

    def _on_submitted(
        self, batch: list[_Submission], results: list[dict[str, Any]], waiting: set[str]
    ) -> None:
        where = f"POST {self.transport.api}{BATCH_PATH}"
        for sub, res in zip(batch, results, strict=True):
            if "error" in res:
                err: Mapping[str, Any] = res["error"]
                param = err.get("param")
                sub.submitted.fail(
                    error_for_status(
                        int(err.get("status", 400)),
                        str(err.get("message")),
                        where=where,
                        param=param if isinstance(param, str) else None,
                    )
                )
                continue
            state = RemoteState.from_json(res["execution"])
            sub.result = self.waiter.slot(state.id)
            if not state.status.is_terminal:
                self.waiter.cover(state.id)
                waiting.add(state.id)
            sub.submitted.set(state)


def _fail(subs: list[_Submission], exc: BaseException, url: str) -> None:
    """Sending ``subs`` to ``url`` failed with ``exc``: each fails with its public error;
    a cancellation (any ``BaseException`` that is no ``Exception``) goes on up."""
    err = translate(exc, url)
    for sub in subs:
        sub.submitted.fail(err if isinstance(err, Exception) else DaisiError(repr(err)))
    if not isinstance(exc, Exception):
        raise exc
