"""The v1 extensions: binary blobs, waits without polling, event streams, batches."""

from __future__ import annotations

import asyncio
import platform
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import dill
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .._wire import MAX_WAIT_SECONDS, ExecutionStatus
from . import routes_runs
from .engine import INLINE_RESULT_BYTES, Runtime
from .errors import ApiError, bad_request, not_found
from .http import (
    KEEPALIVE,
    asked_workers,
    bounded_stream,
    caller,
    dumps,
    execution_json,
    expect_object,
    json_response,
    json_seconds,
    json_text_bytes,
    parse_int,
    query_int,
    query_seconds,
    read_json,
    require_owner,
    runtime,
    sse_response,
    woken,
)
from .store import Blob, BlobTooLarge, Event, ExecutionRecord, Store

FEATURES = ["blobs", "wait", "multiwait", "events", "batch", "cancel", "idempotency"]
MAX_BATCH = 10_000
BATCH_SLICE = 100
"""A batch's submissions are made this many at a time, the event loop turning between
slices: workers take the first executions while the rest are checked and recorded
(else they idle through a large batch; 5,000-call gathers +8%, in A/B runs)."""


async def capabilities(request: Request) -> Response:
    rt = runtime(request)
    caller(request)  # a bad token is 401 here too
    return json_response(
        {
            "protocol": "daisi",
            "versions": [1],
            "features": FEATURES,
            "max_body_bytes": rt.config.max_body_bytes,
            "max_workers": rt.config.max_workers,
            "inline_result_bytes": INLINE_RESULT_BYTES,
            "runtime": {"python": platform.python_version(), "dill": str(dill.__version__)},
        }
    )


async def list_daisies(request: Request) -> Response:
    rt = runtime(request)
    user = caller(request)
    return json_response(
        {
            "daisies": [
                rt.daisi_json(s)
                for s in rt.registry.all()
                if rt.auth.can_see_daisi(user, owner=s.owner, public=s.public)
            ]
        }
    )


async def get_daisi(request: Request) -> Response:
    rt = runtime(request)
    return json_response(
        rt.daisi_json(rt.find_daisi(unquote(request.path_params["name"]), caller(request)))
    )


async def put_blob(request: Request) -> Response:
    rt = runtime(request)
    user = caller(request)
    try:
        key, size = await rt.store.put_blob_stream(
            bounded_stream(request, rt.config.max_body_bytes),
            owner=user,
            max_bytes=rt.config.max_body_bytes,
        )
    except BlobTooLarge as exc:
        raise ApiError(413, "payload_too_large", str(exc)) from None
    await rt.store.commit()
    return json_response({"key": key, "size": size}, 201)


def _blob_response(store: Store, key: str, media_type: str, blob: Blob | None = None) -> Response:
    blob = blob or store.get_blob(key)
    if blob is None:
        raise not_found(f"no blob with key {key!r}")
    if blob.data is not None:
        return Response(blob.data, media_type=media_type)
    return StreamingResponse(
        _iterate(store, key), media_type=media_type, headers={"content-length": str(blob.size)}
    )


BLOB_READ = 1 << 22
"""Bytes read from a blob file at a time (one thread hop and one write each)."""


async def _iterate(store: Store, key: str) -> AsyncIterator[bytes]:
    blob = store.get_blob(key)
    assert blob is not None and blob.path is not None
    with open(blob.path, "rb", buffering=0) as fh:  # noqa: ASYNC230 - reads go through a thread
        while chunk := await asyncio.to_thread(fh.read, BLOB_READ):
            yield chunk


async def get_blob(request: Request) -> Response:
    rt = runtime(request)
    key = request.path_params["key"]
    blob = rt.blob(key, caller(request))
    if blob is None:
        raise not_found(f"no blob with key {key!r}")
    return _blob_response(rt.store, key, "application/octet-stream", blob)


def _submit_item(
    rt: Runtime,
    item: Any,
    user: str | None,
    *,
    daisi_id: str | None = None,
    key: str | None = None,
    stored_keys: set[str] | None = None,
) -> tuple[ExecutionRecord, bool]:
    item = expect_object(item, "a submission")
    did = daisi_id or item.get("daisi_id")
    if not isinstance(did, str):
        raise bad_request("'daisi_id' must be a string", param="daisi_id")
    spec = rt.visible(rt.registry.get(did), user)
    endpoint = item.get("endpoint")
    if not isinstance(endpoint, str):
        raise bad_request("'endpoint' must be a string", param="endpoint")
    arguments = item.get("arguments", {})
    if not isinstance(arguments, dict):
        raise bad_request("'arguments' must be an object", param="arguments")
    key = key or item.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 200):
        raise bad_request("the idempotency key must be a string of 1 to 200 characters")
    args = rt.check_submission(spec, endpoint, arguments, user)
    stored = stored_keys is None or key in stored_keys
    return rt.submit(spec, endpoint, args, user, idempotency_key=key, key_stored=stored)


async def submit_one(request: Request) -> Response:
    rt = runtime(request)
    user = caller(request)
    wait = query_seconds(request, "wait", cap=MAX_WAIT_SECONDS)
    body = await read_json(request)
    rec, created = _submit_item(
        rt,
        body,
        user,
        daisi_id=request.path_params["daisi_id"],
        key=request.headers.get("idempotency-key"),
    )
    await rt.store.commit()
    rt.store.check_saved(rec)
    if wait:
        rec = await rt.wait(rec.id, timeout=wait)
    return json_response(execution_json(rt, rec, with_result=wait > 0), 201 if created else 200)


async def submit_batch(request: Request) -> Response:
    rt = runtime(request)
    user = caller(request)
    wait = query_seconds(request, "wait", cap=MAX_WAIT_SECONDS)
    body = expect_object(await read_json(request), "the body")
    items = body.get("executions")
    if not isinstance(items, list):
        raise bad_request("'executions' must be a list", param="executions")
    if len(items) > MAX_BATCH:
        raise ApiError(413, "payload_too_large", f"at most {MAX_BATCH} executions per batch")
    results: list[dict[str, Any]] = []
    made: list[tuple[int, ExecutionRecord]] = []
    for start in range(0, len(items), BATCH_SLICE):
        if start:  # let the executions made so far start meanwhile
            await asyncio.sleep(0)
        chunk = items[start : start + BATCH_SLICE]
        # The slice's idempotency keys already stored, in one query (asked in the turn
        # that makes the slice: a key stored later is a creation the store still holds).
        stored = rt.store.stored_keys(user or "", [k for k in map(_key_of, chunk) if k])
        for item in chunk:
            try:
                rec, created = _submit_item(rt, item, user, stored_keys=stored)
            except ApiError as exc:
                results.append({"error": exc.to_json()})
                continue
            made.append((len(results), rec))
            results.append({"execution": execution_json(rt, rec), "created": created})
    await rt.store.commit()
    ids: list[str] = []
    for i, rec in made:
        if rt.store.saved(rec):
            ids.append(rec.id)
        else:
            message = f"execution {rec.id} could not be stored"
            results[i] = {"error": {"status": 503, "code": "storage_error", "message": message}}
    if not wait:
        return json_response({"results": results})
    first = {"type": "submitted", "results": results}
    return StreamingResponse(_ndjson_waits(rt, ids, wait, first), media_type="application/x-ndjson")


def _key_of(item: Any) -> str | None:
    key = item.get("idempotency_key") if isinstance(item, dict) else None
    return key if isinstance(key, str) else None


def _line(obj: Any) -> bytes:
    return dumps(obj).encode("ascii") + b"\n"


async def _ndjson_waits(
    rt: Runtime, ids: list[str], timeout: float, first: dict[str, Any] | None = None
) -> AsyncIterator[bytes]:
    if first is not None:
        yield _line(first)
    async for ended, pending in rt.wait_many(ids, timeout=timeout):
        if pending is not None:
            yield _line({"type": "end", "pending": pending})
        else:  # one write for all that ended together
            yield b"".join(
                _line({"type": "done", "execution": execution_json(rt, rec, with_result=True)})
                for rec in ended
            )


async def wait_many(request: Request) -> Response:
    rt = runtime(request)
    user = caller(request)
    body = expect_object(await read_json(request), "the body")
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise bad_request("'ids' must be a list of execution ids", param="ids")
    if len(ids) > MAX_BATCH:
        raise ApiError(413, "payload_too_large", f"at most {MAX_BATCH} ids per wait")
    timeout = json_seconds(body, "timeout", default=MAX_WAIT_SECONDS, cap=MAX_WAIT_SECONDS)
    known: list[str] = []
    errors: list[bytes] = []
    for eid in dict.fromkeys(ids):
        try:
            rec = rt.execution(eid, user)
            rt.check_storage(rec)  # a failing store answers at once, not mid-stream
            known.append(rec.id)
        except ApiError as exc:
            errors.append(_line({"type": "error", "id": eid, "error": exc.to_json()}))

    async def stream() -> AsyncIterator[bytes]:
        for line in errors:
            yield line
        async for chunk in _ndjson_waits(rt, known, timeout):
            yield chunk

    return StreamingResponse(stream(), media_type="application/x-ndjson")


async def get_execution(request: Request) -> Response:
    rt = runtime(request)
    rec = rt.execution(request.path_params["eid"], caller(request))
    wait = query_seconds(request, "wait", cap=MAX_WAIT_SECONDS)
    if wait:
        rec = await rt.wait(rec.id, timeout=wait)
    want = wait > 0 or request.query_params.get("result") in ("1", "true")
    return json_response(execution_json(rt, rec, with_result=want))


async def get_result(request: Request) -> Response:
    rt = runtime(request)
    rec = rt.execution(request.path_params["eid"], caller(request))
    if rec.status is not ExecutionStatus.FINISHED or rec.result_key is None:
        raise ApiError(
            409, "not_ready", f"execution {rec.id} is {rec.status.value}; it has no result"
        )
    if rec.result_json is not None:
        return Response(json_text_bytes(rec.result_json), media_type="application/json")
    await rt.fetch_result(rec)  # a result kept on a Dask worker comes here first
    return _blob_response(rt.store, rec.result_key, "application/x-dill")


async def get_logs(request: Request) -> Response:
    rt = runtime(request)
    rec = rt.execution(request.path_params["eid"], caller(request))
    after = query_int(request, "after", default=0)
    limit = query_int(request, "limit", default=10_000)
    events = rt.store.events(rec.id, after=after, kind="log", limit=limit)
    return json_response({"status": rec.status.value, "lines": [e.to_json() for e in events]})


def _sse(ev: Event) -> bytes:
    data = dumps(ev.to_json())
    return f"id: {ev.seq}\nevent: {ev.kind}\ndata: {data}\n\n".encode()


async def events(request: Request) -> Response:
    rt = runtime(request)
    rec = rt.execution(request.path_params["eid"], caller(request))
    header = request.headers.get("last-event-id")
    if header:
        after = parse_int(header, "Last-Event-ID", default=0)
    else:
        after = query_int(request, "after", default=0)

    async def stream() -> AsyncIterator[bytes]:
        seq = after
        wake = asyncio.Event()
        remove = rt.store.listen(rec.id, lambda _r, _e: wake.set())
        try:
            while True:
                wake.clear()
                for ev in rt.store.events(rec.id, after=seq):
                    seq = ev.seq
                    yield _sse(ev)
                    if ev.kind == "status" and ExecutionStatus(ev.data).is_terminal:
                        return
                if rec.status.is_terminal and seq >= rec.seq:
                    return
                if not await woken(wake):
                    yield KEEPALIVE
        finally:
            remove()

    return sse_response(stream())


async def cancel(request: Request) -> Response:
    rt = runtime(request)
    rec = rt.execution(request.path_params["eid"], caller(request))
    rt.cancel(rec)
    await rt.store.commit()
    return json_response(execution_json(rt, rec))


async def workers(request: Request) -> Response:
    rt = runtime(request)
    user = caller(request)
    spec = rt.visible(rt.registry.get(request.path_params["daisi_id"]), user)
    if request.method == "PUT":
        require_owner(rt, spec, user, "change the workers of a Daisi")
    pool = rt.lifecycle.pools.get(spec.id)
    if pool is None:
        raise rt.unavailable(spec)
    if request.method == "PUT":
        body = expect_object(await read_json(request), "the body")
        pool.pin(asked_workers(rt, body, "number"))
    return json_response({"number": pool.number, "status": pool.status})


async def start_log(request: Request) -> Response:
    rt = runtime(request)
    spec = rt.visible(rt.registry.get(request.path_params["daisi_id"]), caller(request))
    after = query_int(request, "after", default=0)
    return json_response({"lines": rt.lifecycle.start_log(spec).lines(after=after)})


async def build(request: Request) -> Response:
    """``{"state", "log"}``: the Daisi's environment build (visible as the Daisi is)."""
    rt = runtime(request)
    spec = rt.visible(rt.registry.get(request.path_params["daisi_id"]), caller(request))
    return json_response(rt.envs.build_info(spec))


routes = [  # the calls of every execution first (routes are tried in order)
    Route("/v1/executions", submit_batch, methods=["POST"]),
    Route("/v1/executions/wait", wait_many, methods=["POST"]),  # before /{eid}
    Route("/v1/daisies/{daisi_id}/executions", submit_one, methods=["POST"]),
    Route("/v1/blobs", put_blob, methods=["POST"]),
    Route("/v1/executions/{eid}/result", get_result),
    Route("/v1/executions/{eid}/events", events),
    Route("/v1/executions/{eid}", get_execution),
    Route("/v1/executions/{eid}/logs", get_logs),
    Route("/v1/executions/{eid}/cancel", cancel, methods=["POST"]),
    Route("/v1/blobs/{key}", get_blob),
    Route("/v1/executions", routes_runs.list_executions, methods=["GET"]),
    Route("/capabilities", capabilities),
    Route("/v1/daisies", list_daisies),
    Route("/v1/daisies/{daisi_id}/workers", workers, methods=["GET", "PUT"]),
    Route("/v1/daisies/{daisi_id}/build", build),
    Route("/v1/daisies/{daisi_id}/log", start_log),
    Route("/v1/daisies/{name:path}", get_daisi),  # after every /v1/daisies/{id}/...
    Route("/v1/events", routes_runs.feed),
]
