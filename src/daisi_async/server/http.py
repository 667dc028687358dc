"""Request helpers shared by the legacy and v1 routes: the caller, bounded bodies, JSON.

Every route reads its JSON body with :func:`read_json` (which refuses text that is not
valid Unicode), its numbers with :func:`query_int`, :func:`query_seconds`,
:func:`json_seconds` and :func:`json_count`, and answers with :func:`json_response`
(ASCII JSON: any Python string, unpaired surrogates included, survives the trip).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import re
from typing import TYPE_CHECKING, Any

import dill
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from .._wire import ExecutionStatus
from .auth import AuthError
from .engine import INLINE_RESULT_BYTES, Runtime
from .errors import ApiError, bad_request, forbidden
from .registry import DaisiSpec
from .store import ExecutionRecord

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable


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


def require_owner(rt: Runtime, spec: DaisiSpec, user: str | None, action: str) -> None:
    """Let only the owner of a (visible) Daisi ``action`` it: 401 anonymous, 403 others."""
    if rt.auth.can_manage_daisi(user, owner=spec.owner):
        return
    if user is None:
        raise ApiError(
            401, "unauthorized", f"to {action}, send its owner's token (Authorization: token ...)"
        )
    raise forbidden(f"only the owner of Daisi {spec.full_name!r} may {action}")


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
    """The JSON body; 400 when it is not JSON or holds text that is not valid Unicode."""
    body = await read_body(request)
    if not body:
        raise ApiError(400, "invalid_json", "the request body is empty; expected JSON")
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the request body is nested too deeply") from None
    if _may_hold_surrogates(body):
        check_unicode(value)
    return value


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _may_hold_surrogates(body: bytes) -> bool:
    # json.loads reads "\ud800" escapes, raw surrogate bytes (it decodes UTF-8 with
    # 'surrogatepass') and UTF-16/32 bodies (the only ones with NUL bytes: JSON text
    # can't hold a raw control character). A body with none of these holds no
    # surrogate and is not walked (a 2 MB non-ASCII batch: 3 ms here, 120 ms walking).
    if b"\x00" in body or _SURROGATE_ESCAPE.search(body) is not None:
        return True
    if body.isascii():
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _member(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def check_unicode(value: Any) -> None:
    """400 naming the first string (or member name) of ``value`` that is not valid Unicode.

    JSON can carry unpaired UTF-16 surrogates (``"\\ud800"``); no UTF-8 text, SQLite
    column or Daisi should ever see one, so they are refused where bodies are read.

    Example:
        >>> check_unicode({"arguments": {"x": {"value": "ok"}}})  # no error
    """
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise _not_unicode(path, "")
        elif isinstance(item, dict):
            for key, member in item.items():
                where = _member(path, key)
                if _SURROGATE.search(key):
                    raise _not_unicode(where, "the name of ")
                stack.append((member, where))
        elif isinstance(item, list):
            stack.extend((member, f"{path}[{i}]") for i, member in enumerate(item))


def _not_unicode(path: str, what: str) -> ApiError:
    where = f"{what}{path}" if path else "the body"
    return bad_request(
        f"text in {where} is not valid Unicode (an unpaired UTF-16 surrogate)",
        param=path or None,
    )


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
    if rec.status is not ExecutionStatus.FINISHED or rec.result_key is None:
        return None
    if rec.result_json is not None:
        # ``size`` is the size of what ``/result`` answers: here the JSON text.
        size = len(json_text_bytes(rec.result_json))
        return {"encoding": "json", "value": JSONText(rec.result_json), "size": size}
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
        "status": rec.status,  # a str: both JSON encoders write its value
        "created_at": rec.created_at,
        "started_at": rec.started_at,
        "finished_at": rec.finished_at,
        "error": rec.error,
        "result": result_json(rt, rec) if with_result else None,
    }
    return body


def dumps(body: Any) -> str:
    """Compact ASCII JSON: every string survives, unpaired surrogates included.

    orjson writes it when installed and the text is ASCII (its NaN is ``null``: none
    reaches here, requests and JSON results refuse it); the standard library otherwise.

    ASCII escapes cost nothing on ASCII text (measured: the same 12.7 us for an
    Execution reply as UTF-8 output) and never fail to encode, unlike UTF-8 output,
    which can't carry a surrogate a Daisi returned or printed.

    Example:
        >>> dumps({"v": "\N{SNOWMAN}"})
        '{"v":"\\\\u2603"}'
    """
    if _fast is not None:  # orjson: 0.3 us instead of 9 us for an Execution object
        try:
            out = _fast(body, default=_fragment)
        except TypeError:  # orjson.JSONEncodeError: a surrogate, an int over 64 bits, ...
            pass
        else:
            if out.isascii():  # else the escapes below: any text, the same JSON
                return out.decode("ascii")
    return _encode(body)


class JSONText:
    """JSON text (a stored result) that :func:`dumps` writes into a reply as it is: not
    read and written again for each reply.

    Example:
        >>> dumps({"value": JSONText('[1,{"a":2.5}]')})
        '{"value":[1,{"a":2.5}]}'
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _parsed(obj: object) -> Any:
    """The standard library's ``default``: a :class:`JSONText` as its value."""
    if isinstance(obj, JSONText):
        return json.loads(obj.text)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


_encode = json.JSONEncoder(
    ensure_ascii=True, allow_nan=False, separators=(",", ":"), default=_parsed
).encode
_fast: Callable[..., bytes] | None
try:
    from orjson import Fragment
    from orjson import dumps as _fast
except ImportError:  # the server extra installs it; the standard library does the same
    _fast = None


def _fragment(obj: object) -> Any:
    """orjson's ``default``: a :class:`JSONText` goes in verbatim."""
    if isinstance(obj, JSONText):
        return Fragment(obj.text)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


class AsciiJSONResponse(JSONResponse):
    """A JSON reply rendered by :func:`dumps`."""

    def render(self, content: Any) -> bytes:
        """The body bytes."""
        return dumps(content).encode("ascii")


def json_text_bytes(text: str) -> bytes:
    """Stored JSON text as reply bytes: UTF-8, or ASCII-escaped if it holds surrogates."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return dumps(json.loads(text)).encode("ascii")


def json_response(body: Any, status: int = 200) -> Response:
    """A compact JSON reply."""
    return AsciiJSONResponse(body, status_code=status)


def error_response(exc: ApiError) -> Response:
    """The JSON reply of an :class:`ApiError`."""
    return AsciiJSONResponse({"error": exc.to_json()}, status_code=exc.status)


# -- numbers: one helper per kind, used by every route ---------------------------------

_DIGITS = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_int(
    raw: str | None, name: str, *, default: int, minimum: int = 0, maximum: int = MAX_SQL_INT
) -> int:
    """A whole number given as text (a query value, a header).

    ``default`` when absent or empty; 400 naming ``name`` unless plain ASCII digits
    (no sign, no ``_``) worth at least ``minimum``; above ``maximum`` it is ``maximum``
    (``limit`` then means "all", ``after`` "nothing after").

    Example:
        >>> parse_int("12", "limit", default=0)
        12
    """
    if raw is None or raw == "":
        return default
    text = raw.strip()
    negative = text.startswith("-") and _DIGITS.fullmatch(text[1:]) is not None
    if not negative and not _DIGITS.fullmatch(text):
        raise bad_request(f"{name!r} must be a whole number, not {raw[:40]!r}", param=name)
    digits = text.lstrip("-").lstrip("0") or "0"
    if negative and digits != "0":
        raise bad_request(f"{name!r} must be >= {minimum}, not {raw[:40]}", param=name)
    if len(digits) > len(str(maximum)):
        return maximum
    value = int(digits)
    if value < minimum:
        raise bad_request(f"{name!r} must be >= {minimum}, not {value}", param=name)
    return min(value, maximum)


def query_int(
    request: Request, name: str, *, default: int, minimum: int = 0, maximum: int = MAX_SQL_INT
) -> int:
    """A whole-number query parameter (see :func:`parse_int`)."""
    raw = request.query_params.get(name)
    return parse_int(raw, name, default=default, minimum=minimum, maximum=maximum)


def query_seconds(request: Request, name: str = "wait", *, cap: float = 60.0) -> float:
    """A number of seconds in the query (0 when absent), at most ``cap``.

    400 naming ``name`` for anything but a plain non-negative decimal (``nan``, ``inf``,
    ``-1``, ``1_0``, ``0x10``) or one no float holds (``1e400``); a finite number over
    ``cap`` is ``cap``.
    """
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return 0.0
    text = raw.strip()
    if len(text) > 400 or not _DECIMAL.fullmatch(text):
        raise bad_request(
            f"query parameter {name!r} must be a number of seconds >= 0, not {raw[:40]!r}",
            param=name,
        )
    return _capped_seconds(float(text), name, cap)


def _capped_seconds(value: float, name: str, cap: float) -> float:
    if not math.isfinite(value):
        raise bad_request(f"{name!r} must be a finite number of seconds", param=name)
    if value < 0:
        raise bad_request(f"{name!r} must be >= 0", param=name)
    return min(value, cap)


def json_seconds(body: dict[str, Any], name: str, *, default: float, cap: float) -> float:
    """A number of seconds in a JSON body, at most ``cap``; 400 naming ``name`` for a
    non-number, a boolean, a negative number, or one no float holds (NaN, Infinity,
    ``1e400``, a 400-digit integer). A finite number over ``cap`` is ``cap``."""
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request(f"{name!r} must be a number of seconds", param=name)
    try:
        seconds = float(value)
    except OverflowError:
        raise bad_request(f"{name!r} must be a finite number of seconds", param=name) from None
    return _capped_seconds(seconds, name, cap)


def json_count(
    body: dict[str, Any], name: str, *, minimum: int, maximum: int, why: str = ""
) -> int:
    """A whole number in a JSON body within ``[minimum, maximum]``; else 422 naming it
    (booleans and ``2.0`` are not whole numbers here). ``why`` explains the bounds."""
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        shown = json.dumps(value)[:40] if name in body else "missing"
        raise ApiError(
            422,
            "invalid_arguments",
            f"{name!r} must be a whole number from {minimum} to {maximum}{why}, not {shown}",
            param=name,
        )
    return value


def asked_workers(rt: Runtime, body: dict[str, Any], name: str) -> int:
    """The number of workers asked for in ``body[name]``: 1 to the server's cap, else 422."""
    cap = rt.config.max_workers
    return json_count(body, name, minimum=1, maximum=cap, why=" (this server's --max-workers)")


# -- server-sent events ------------------------------------------------------------------

KEEPALIVE_SECONDS = 15.0
"""An event stream with nothing to say sends a comment this often (proxies keep it)."""
KEEPALIVE = b": keep-alive\n\n"


async def woken(wake: asyncio.Event, timeout: float = KEEPALIVE_SECONDS) -> bool:
    """Wait for ``wake``; False when ``timeout`` passes first (time for a keep-alive)."""
    try:
        await asyncio.wait_for(wake.wait(), timeout)
    except asyncio.TimeoutError:  # (not the builtin before Python 3.11)
        return False
    return True


def sse_response(stream: AsyncIterator[bytes]) -> StreamingResponse:
    """A ``text/event-stream`` reply that no proxy buffers or caches."""
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
