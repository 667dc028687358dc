"""Request helpers shared by the legacy and v1 routes: the caller, bounded bodies, JSON."""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

import dill
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .auth import AuthError
from .engine import INLINE_RESULT_BYTES, Runtime
from .errors import ApiError, bad_request
from .store import ExecutionRecord

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def runtime(request: Request) -> Runtime:
    """The runtime serving this request."""
    rt: Runtime = request.app.state.runtime
    return rt


def caller(request: Request) -> str | None:
    """The user behind the request's token (None: anonymous); 401 on a bad token."""
    try:
        return runtime(request).auth.user(request.headers.get("authorization"))
    except AuthError as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None


MAX_SQL_INT = 2**63 - 1
"""The largest integer SQLite stores: query numbers (``limit``, ``after``) are capped to it."""


def too_large(limit: int) -> ApiError:
    """The 413 for a body over the limit."""
    return ApiError(413, "payload_too_large", f"the request body is larger than {limit} bytes")


def declared_length(request: Request, limit: int) -> None:
    """Reject early a body whose declared length is over ``limit``."""
    length = request.headers.get("content-length")
    if length is not None:
        try:
            n = int(length)
        except ValueError:
            raise bad_request("invalid Content-Length header") from None
        if n > limit:
            raise too_large(limit)


async def bounded_stream(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The request body in chunks, stopping with 413 past ``limit`` bytes."""
    declared_length(request, limit)
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise too_large(limit)
        yield chunk


async def read_body(request: Request, limit: int | None = None) -> bytes:
    """The whole body, bounded by the runtime's limit."""
    limit = limit or runtime(request).config.max_body_bytes
    parts = [chunk async for chunk in bounded_stream(request, limit)]
    return b"".join(parts)


async def read_json(request: Request) -> Any:
    """The JSON body; 400 when it is not JSON."""
    body = await read_body(request)
    if not body:
        raise ApiError(400, "invalid_json", "the request body is empty; expected JSON")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the request body is nested too deeply") from None


def expect_object(value: Any, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object; else 400."""
    if not isinstance(value, dict):
        raise bad_request(f"{what} must be a JSON object")
    return value


def b64decode(text: Any, what: str) -> bytes:
    """Strict base64; 400 on anything else."""
    if not isinstance(text, str):
        raise bad_request(f"{what} must be a base64 string")
    try:
        return base64.b64decode("".join(text.split()).encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise bad_request(f"{what} is not valid base64: {exc}") from None


def b64encode(data: bytes) -> str:
    """Standard base64 text (what pydaisi decodes)."""
    return base64.b64encode(data).decode("ascii")


def dill_b64(obj: Any) -> str:
    """A server-made value (a dict of strings) as base64 dill, for legacy replies."""
    return b64encode(dill.dumps(obj, protocol=5))


def result_json(rt: Runtime, rec: ExecutionRecord) -> dict[str, Any] | None:
    """The ``result`` member of an execution in waiting replies."""
    if rec.status.value != "FINISHED" or rec.result_key is None:
        return None
    if rec.result_json is not None:
        # ``size`` is the size of what ``/result`` answers: here the JSON text.
        size = len(rec.result_json.encode("utf-8"))
        return {"encoding": "json", "value": json.loads(rec.result_json), "size": size}
    data: str | None = None
    if rec.result_size <= INLINE_RESULT_BYTES:
        blob = rt.store.get_blob(rec.result_key)
        if blob is not None and blob.data is not None:
            data = b64encode(blob.data)
    return {"encoding": "dill", "data": data, "size": rec.result_size}


def execution_json(
    rt: Runtime, rec: ExecutionRecord, *, with_result: bool = False
) -> dict[str, Any]:
    """The v1 Execution object."""
    body: dict[str, Any] = {
        "id": rec.id,
        "daisi_id": rec.daisi_id,
        "endpoint": rec.endpoint,
        "status": rec.status.value,
        "created_at": rec.created_at,
        "started_at": rec.started_at,
        "finished_at": rec.finished_at,
        "error": rec.error,
        "result": result_json(rt, rec) if with_result else None,
    }
    return body


def json_response(body: Any, status: int = 200) -> Response:
    """A compact JSON reply."""
    return JSONResponse(body, status_code=status)


def error_response(exc: ApiError) -> Response:
    """The JSON reply of an :class:`ApiError`."""
    return JSONResponse({"error": exc.to_json()}, status_code=exc.status)


def wait_seconds(request: Request, name: str = "wait") -> float:
    """A bounded ``?wait=`` query value in seconds (0 when absent)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise bad_request(f"query parameter {name!r} must be a number of seconds") from None
    if not value >= 0:
        raise bad_request(f"query parameter {name!r} must be >= 0")
    return min(value, 60.0)
