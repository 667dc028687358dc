"""The legacy routes, exactly as the original ``pydaisi==0.3.3.0`` client uses them."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from .._wire import LOOKUP_PREFIX, ExecutionStatus
from .engine import Runtime
from .errors import ApiError, bad_request, not_found
from .http import (
    asked_workers,
    b64decode,
    b64encode,
    caller,
    dill_b64,
    dumps,
    expect_object,
    json_response,
    json_text_bytes,
    query_int,
    query_seconds,
    read_json,
    require_owner,
    runtime,
)
from .registry import DaisiSpec
from .store import ExecutionRecord
from .workers.jobs import error_text

RESULTS_MAP_WAIT = 30.0


def _daisi(request: Request) -> tuple[Runtime, DaisiSpec, str | None]:
    rt = runtime(request)
    user = caller(request)
    spec = rt.visible(rt.registry.get(request.path_params["daisi_id"]), user)
    return rt, spec, user


def _legacy_args(rt: Runtime, raw: dict[str, Any], user: str | None) -> dict[str, dict[str, Any]]:
    args: dict[str, dict[str, Any]] = {}
    for name, value in raw.items():
        if isinstance(value, str) and value.startswith(LOOKUP_PREFIX):
            args[name] = rt.resolve_lookup(value[len(LOOKUP_PREFIX) :], user, name)
        else:
            args[name] = {"value": value}
    return args


async def connect(request: Request) -> Response:
    rt = runtime(request)
    name = request.query_params.get("name")
    if not name:
        raise bad_request("query parameter 'name' is required", param="name")
    return json_response(rt.daisi_json(rt.find_daisi(name, caller(request))))


async def daisi_info(request: Request) -> Response:
    rt, spec, _ = _daisi(request)
    return json_response(rt.daisi_json(spec))


async def endpoints(request: Request) -> Response:
    _, spec, _ = _daisi(request)
    return json_response([ep.to_json() for ep in spec.endpoints.values()])


async def submit(request: Request) -> Response:
    rt, spec, user = _daisi(request)
    raw = expect_object(await read_json(request), "the arguments")
    endpoint = request.path_params["endpoint"]
    args = rt.check_submission(spec, endpoint, _legacy_args(rt, raw, user), user)
    rec, _ = rt.submit(spec, endpoint, args, user)
    await rt.store.commit()
    return json_response({"id": rec.id}, 201)


COMPUTE_WAIT = 60.0


async def compute(request: Request) -> Response:
    """The platform's synchronous call (what the curl snippets of real READMEs use).

    ``POST /pebbles/{id}/compute/{endpoint}`` with the JSON arguments: waits up to
    ``?timeout=`` seconds (60 by default and at most) and answers the result itself when
    it is JSON, else ``{"id", "status", "results"}`` with base64 dill; a failed run is
    ``{"id", "status": "FAILED", "error"}``. ``?wait_for_completion=false``, or a run
    still going at the timeout, answers ``202 {"id", "status"}`` (poll the legacy routes).
    """
    rt, spec, user = _daisi(request)
    wait = query_seconds(request, "timeout", cap=COMPUTE_WAIT) or COMPUTE_WAIT
    if request.query_params.get("wait_for_completion", "true").lower() in ("false", "0", "no"):
        wait = 0.0
    raw = expect_object(await read_json(request), "the arguments")
    endpoint = request.path_params["endpoint"]
    args = rt.check_submission(spec, endpoint, _legacy_args(rt, raw, user), user)
    rec, _ = rt.submit(spec, endpoint, args, user)
    await rt.store.commit()
    rt.store.check_saved(rec)
    if wait:
        rec = await rt.wait(rec.id, timeout=wait)
    head = {"id": rec.id, "status": rec.status.legacy}
    if not rec.status.is_terminal:
        return json_response(head, 202)
    if rec.status is not ExecutionStatus.FINISHED:
        return json_response({**head, "error": rec.error})
    if rec.result_json is not None:
        return Response(json_text_bytes(rec.result_json), media_type="application/json")
    await rt.fetch_result(rec)
    return json_response({**head, "results": _legacy_result(rt, rec, True)})


def _execution(request: Request) -> tuple[Runtime, ExecutionRecord]:
    rt, spec, user = _daisi(request)
    rec = rt.execution(request.path_params["eid"], user)
    if rec.daisi_id != spec.id:
        raise not_found(f"no execution with id {rec.id!r} for this Daisi")
    return rt, rec


async def status(request: Request) -> Response:
    _, rec = _execution(request)
    return json_response(rec.status.legacy)


async def logs(request: Request) -> Response:
    rt, rec = _execution(request)
    limit = query_int(request, "limit", default=-1)
    if limit >= 0:
        return json_response(rt.store.last_lines(rec.id, limit))
    return json_response([ev.data for ev in rt.store.events(rec.id, kind="log")])


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() in ("true", "1", "yes")


def _legacy_result(rt: Runtime, rec: ExecutionRecord, download: bool) -> str | None:
    if rec.status is ExecutionStatus.FINISHED and rec.result_key:
        if not download:
            return LOOKUP_PREFIX + rec.id
        blob = rt.store.get_blob(rec.result_key)
        return b64encode(blob.read()) if blob else None
    if rec.status.is_terminal:
        failure = {"label": "ERROR", "data": error_text(rec.error)}
        return dill_b64(failure) if download else dumps(failure)
    return None


async def results(request: Request) -> Response:
    rt, rec = _execution(request)
    download = _flag(request, "download")
    if download:
        await rt.fetch_result(rec)
    body = {
        "status": rec.status.legacy,
        "message": rt.store.last_line(rec),
        "results": _legacy_result(rt, rec, download),
    }
    return json_response(body)


async def pickle(request: Request) -> Response:
    rt = runtime(request)
    user = caller(request)
    body = expect_object(await read_json(request), "the body")
    if "data" not in body:
        raise bad_request("missing 'data' (base64 dill)", param="data")
    data = b64decode(body["data"], "'data'")
    key = rt.store.put_blob(data, owner=user)
    await rt.store.commit()
    return PlainTextResponse(key)


def _map_items(raw: Any) -> list[dict[str, Any]]:
    body = expect_object(raw, "the body")
    items = body.get("executions")
    if not isinstance(items, list):
        raise bad_request("'executions' must be a list", param="executions")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise bad_request(f"executions[{i}] must be an object")
    return items


async def map_submit(request: Request) -> Response:
    rt, spec, user = _daisi(request)
    items = _map_items(await read_json(request))
    prepared = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        eid = item.get("id") or str(uuid.uuid4())
        try:
            eid = str(uuid.UUID(str(eid)))
        except ValueError:
            raise bad_request(f"executions[{i}].id must be a UUID") from None
        if eid in seen or rt.store.exists(eid):
            raise ApiError(409, "conflict", f"executions[{i}].id {eid} is already in use")
        seen.add(eid)
        endpoint = item.get("endpoint")
        if not isinstance(endpoint, str):
            raise bad_request(f"executions[{i}].endpoint must be a string")
        raw_args = expect_object(item.get("arguments", {}), f"executions[{i}].arguments")
        args = rt.check_submission(spec, endpoint, _legacy_args(rt, raw_args, user), user)
        prepared.append((eid, endpoint, args))
    for eid, endpoint, args in prepared:
        rt.submit(spec, endpoint, args, user, eid=eid)
    await rt.store.commit()
    return json_response({"executions": [{"id": eid} for eid, _, _ in prepared]}, 201)


async def results_map(request: Request) -> Response:
    rt, _, user = _daisi(request)
    raw = await read_json(request)
    items = _map_items(raw)
    download = bool(raw.get("download", True))
    recs = []
    for i, item in enumerate(items):
        eid = item.get("id")
        if not isinstance(eid, str):
            raise bad_request(f"executions[{i}].id must be a string")
        recs.append(rt.execution(eid, user))
    pending = [r.id for r in recs if not r.status.is_terminal]
    if pending:
        async for _ in rt.wait_many(pending, timeout=RESULTS_MAP_WAIT):
            pass
    if download:
        for r in recs:
            await rt.fetch_result(r)
    return json_response(
        [
            {"id": r.id, "status": r.status.legacy, "result": _legacy_result(rt, r, download)}
            for r in recs
        ]
    )


async def catalogue(request: Request) -> Response:
    rt = runtime(request)
    user = caller(request)
    page = query_int(request, "page", default=1, minimum=1)
    size = query_int(request, "pageSize", default=100, minimum=1, maximum=1000)
    daisies = [
        {"id": s.id, "name": s.name, "owner": s.owner, "description": s.description}
        for s in rt.registry.all()
        if rt.auth.can_see_daisi(user, owner=s.owner, public=s.public)
    ]
    chunk = daisies[(page - 1) * size : page * size]
    return json_response({"data": {"data": chunk, "total": len(daisies), "page": page}})


def _pool(request: Request, *, change: bool = False) -> Any:
    rt, spec, user = _daisi(request)
    if change:
        require_owner(rt, spec, user, "change the workers of a Daisi")
    pool = rt.lifecycle.pools.get(spec.id)
    if pool is None:
        raise rt.unavailable(spec)
    return pool


async def workers_number(request: Request) -> Response:
    return json_response(_pool(request).number)


async def workers_status(request: Request) -> Response:
    return json_response({"message": _pool(request).status})


async def workers_set(request: Request) -> Response:
    pool = _pool(request, change=True)
    body = expect_object(await read_json(request), "the body")
    n = asked_workers(runtime(request), body, "worker_number")
    pool.pin(n)
    return json_response({"message": f"Setting the number of workers to {n}"})


routes = [
    Route("/daisies/connect", connect),
    Route("/daisies/collections/all/daisies", catalogue),
    Route("/daisies/workers/{daisi_id}/number", workers_number),
    Route("/daisies/workers/{daisi_id}/status", workers_status),
    Route("/daisies/workers/{daisi_id}", workers_set, methods=["POST"]),
    Route("/pebbles/pickle", pickle, methods=["POST"]),
    Route("/pebbles/{daisi_id}", daisi_info),
    Route("/pebbles/{daisi_id}/endpoints", endpoints),
    Route("/pebbles/{daisi_id}/map", map_submit, methods=["POST"]),
    Route("/pebbles/{daisi_id}/results_map", results_map, methods=["POST"]),
    Route("/pebbles/{daisi_id}/executions/{endpoint}", submit, methods=["POST"]),
    Route("/pebbles/{daisi_id}/compute/{endpoint}", compute, methods=["POST"]),
    Route("/pebbles/{daisi_id}/executions/{eid}/status", status),
    Route("/pebbles/{daisi_id}/executions/{eid}/logs", logs),
    Route("/pebbles/{daisi_id}/executions/{eid}/results", results),
]
