"""The one error table: every transport, HTTP and stream failure -> a public exception.

Only this module (with :mod:`._transport`) looks at ``httpx`` errors; everything above
sees :class:`~._errors.DaisiError` subclasses. It also says which HTTP statuses are
transient (:data:`RETRY_STATUSES`) and which failures are a stream dropped half-way
(:func:`dropped`), for :mod:`._retry`.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any, Concatenate, NoReturn, ParamSpec, Protocol, TypeVar

import httpx
from httpx_sse import SSEError

from ._errors import (
    DaisiArgumentError,
    DaisiAuthenticationError,
    DaisiConnectionError,
    DaisiError,
    DaisiNotFoundError,
    DaisiPermissionError,
    DaisiProtocolError,
    DaisiRequestError,
    DaisiServerError,
    DaisiTimeoutError,
)

if sys.version_info < (3, 11):  # pragma: no cover - anyio depends on the backport there
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "NOT_PROCESSED_STATUSES",
    "RETRY_STATUSES",
    "ReplyErrors",
    "RetryableStatus",
    "describe",
    "dropped",
    "error_for_status",
    "error_from_response",
    "json_of",
    "replies",
    "reply_errors",
    "reply_stream",
    "reraise",
    "translate",
]

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 507})
"""Transient statuses: the request is retried (idempotent ones always)."""
NOT_PROCESSED_STATUSES = frozenset({429, 503, 507})
"""Statuses that say the request was not acted on: safe to retry even a plain POST. (503
and 507 are also the runtime's storage errors: a refused submission is never created.)"""

REPLY_ERRORS = (httpx.DecodingError, ValueError, LookupError, TypeError, AttributeError)
"""What reading a garbled reply raises: bad gzip, JSON / Unicode / base64 errors (all
``ValueError``), missing keys or items, values of the wrong type."""

CONNECT_HINT = "is `daisi serve` running? Set DAISI_BASE_URL or base_url= to where it listens"


class RetryableStatus(Exception):
    """A reply with a transient status, raised inside a retry loop (never escapes it)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else repr(exc)


def _origin(where: str) -> str:
    """``scheme://host:port`` of a URL (the server a user would have to start)."""
    try:
        url = httpx.URL(where)
        return f"{url.scheme}://{url.netloc.decode('ascii')}" if url.scheme else where
    except Exception:
        return where


def translate(exc: BaseException, where: str) -> BaseException:
    """What a public call raises for ``exc``, met talking to ``where`` (a URL).

    A :class:`DaisiError` and a cancellation (any non-``Exception``) come back unchanged,
    and so does a group holding one. A group of one error becomes that error's
    translation; of several, a :class:`DaisiError` listing them.

    ==========================================  ==============================
    failure                                     public exception
    ==========================================  ==============================
    a transient status, after the retries       by status (:func:`error_for_status`)
    ``httpx.TimeoutException``                  :class:`DaisiTimeoutError`
    ``httpx.ConnectError`` (refused, no host)   :class:`DaisiConnectionError` + hint
    an event stream that is not one (SSE)       :class:`DaisiProtocolError`
    other ``httpx.TransportError``, ``OSError`` :class:`DaisiConnectionError`
    a reply that does not decode / parse        :class:`DaisiProtocolError`
    anything else                               :class:`DaisiError`
    ==========================================  ==============================

    The new error's ``__cause__`` is the original (raise it ``from`` its cause).

    Example:
        >>> err = translate(BaseExceptionGroup("g", [httpx.ConnectError("refused")]), "http://h/x")
        >>> type(err).__name__, type(err.__cause__).__name__
        ('DaisiConnectionError', 'ConnectError')
    """
    if isinstance(exc, BaseExceptionGroup):
        leaves = _leaves(exc)
        if not all(isinstance(e, Exception) for e in leaves):
            return exc  # a cancellation or an interrupt travels as it came
        if len(leaves) == 1:
            return translate(leaves[0], where)
        several = DaisiError(
            f"{len(leaves)} errors talking to {where}: " + "; ".join(map(describe, leaves))
        )
        several.__cause__ = exc
        return several
    if isinstance(exc, DaisiError) or not isinstance(exc, Exception):
        return exc
    err: DaisiError
    if isinstance(exc, RetryableStatus):
        err = error_from_response(exc.response)
    elif isinstance(exc, httpx.TimeoutException):
        err = DaisiTimeoutError(f"the request to {where} timed out ({describe(exc)})")
    elif isinstance(exc, (httpx.ConnectError, httpx.UnsupportedProtocol)):
        err = DaisiConnectionError(
            f"could not connect to {_origin(where)}: {CONNECT_HINT} ({describe(exc)})"
        )
    elif isinstance(exc, SSEError):
        err = DaisiProtocolError(
            f"the event stream from {where} is not one ({exc}); is this a Daisi server?"
        )
    elif isinstance(exc, (httpx.TransportError, OSError)):
        err = DaisiConnectionError(f"the connection to {where} failed: {describe(exc)}")
    elif isinstance(exc, REPLY_ERRORS):
        err = DaisiProtocolError(
            f"the reply from {where} is not what a Daisi runtime sends "
            f"({describe(exc)}); is this the URL of a Daisi server?"
        )
    else:
        err = DaisiError(f"talking to {where} failed: {describe(exc)}")
    err.__cause__ = exc
    return err


def dropped(exc: BaseException) -> bool:
    """Whether ``exc`` is a stream (or a reply) cut half-way: worth resuming."""
    cause = exc.__cause__ if isinstance(exc, DaisiError) else exc
    return isinstance(cause, (httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout))


def error_for_status(
    code: int, message: str, *, where: str, param: str | None = None
) -> DaisiError:
    """The :class:`DaisiError` of an HTTP status (a reply, or one item of a batch).

    Example:
        >>> error_for_status(404, "no Daisi named 'x'", where="GET http://h/p")
        DaisiNotFoundError("no Daisi named 'x' (HTTP 404 from GET http://h/p)")
    """
    text = f"{message} (HTTP {code} from {where})"
    if code == 404:
        return DaisiNotFoundError(text, status_code=code)
    if code == 401:
        return DaisiAuthenticationError(text, status_code=code)
    if code == 403:
        return DaisiPermissionError(text, status_code=code)
    if code == 422:
        return DaisiArgumentError(text, param=param, status_code=code)
    if 400 <= code < 500:
        return DaisiRequestError(text, status_code=code)
    return DaisiServerError(text, status_code=code)


def error_body(body: Any) -> Mapping[str, Any] | None:
    """The ``error`` object of a Daisi error reply (``{"error": {"message", ...}}``)."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and "message" in err:
            return err
    return None


def error_from_response(response: httpx.Response) -> DaisiError:
    """The :class:`DaisiError` of a non-2xx reply, with the server's message."""
    param: str | None = None
    try:
        body = response.json()
        err = error_body(body)
        message = str(err["message"]) if err else str(body)[:500]
        param = err.get("param") if err else None
    except Exception:
        message = response.text[:500] or response.reason_phrase
    request = response.request
    return error_for_status(
        response.status_code,
        message,
        where=f"{request.method} {request.url}",
        param=param if isinstance(param, str) else None,
    )


def json_of(response: httpx.Response) -> Any:
    """The JSON body of ``response``; :class:`DaisiProtocolError` naming the URL if it
    is not JSON (an HTML page, a garbled or truncated body, bytes that aren't UTF-8)."""
    try:
        return response.json()
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        request = response.request
        ctype = response.headers.get("content-type") or "no content type"
        raise DaisiProtocolError(
            f"{request.method} {request.url} answered {response.status_code} with "
            f"{ctype} that is not JSON ({exc}); is this the URL of a Daisi server?"
        ) from exc


class ReplyErrors:
    __slots__ = ("_where",)

    def __init__(self, where: str | Callable[[], str]) -> None:
        self._where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            return
        err = translate(exc, self._where if isinstance(self._where, str) else self._where())
        if err is not exc:
            raise err from err.__cause__


def reply_errors(where: str | Callable[[], str]) -> ReplyErrors:
    """Raise what :func:`translate` makes of any error in the block (reading a reply).

    ``where`` (a URL, or a function giving one) is only looked at if something fails.

    Example:
        >>> with reply_errors("http://h/x"):
        ...     int("not a number")
        Traceback (most recent call last):
        ...
        daisi_async.DaisiProtocolError: the reply from http://h/x is not what ...
    """
    return ReplyErrors(where)


P = ParamSpec("P")
T = TypeVar("T")


class _HasApi(Protocol):
    @property
    def api(self) -> str: ...


S = TypeVar("S", bound=_HasApi)


def replies(
    fn: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """Decorate a method that reads replies: errors go through :func:`translate`."""

    @functools.wraps(fn)
    async def guarded(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(self, *args, **kwargs)
        except BaseException as exc:
            reraise(exc, f"{self.api} ({fn.__name__})")

    return guarded


def reraise(exc: BaseException, where: str) -> NoReturn:
    """Raise the public error for ``exc``, met while reading replies from ``where``
    (what :func:`replies` does, for a hot method that keeps no wrapper frame).

    Example:
        >>> try:
        ...     ...
        ... except BaseException as exc:  # doctest: +SKIP
        ...     reraise(exc, "http://127.0.0.1:8080/pebble-api (submit)")
    """
    err = translate(exc, where)
    if err is exc:
        raise exc
    raise err from err.__cause__


def reply_stream(
    fn: Callable[Concatenate[S, P], AsyncIterator[T]],
) -> Callable[Concatenate[S, P], AsyncIterator[T]]:
    """:func:`replies` for an async generator method."""

    @functools.wraps(fn)
    async def guarded(self: S, /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        items = fn(self, *args, **kwargs)
        try:
            with reply_errors(lambda: f"{self.api} ({fn.__name__})"):
                async for item in items:
                    yield item
        finally:
            await items.aclose()  # type: ignore[attr-defined]

    return guarded
