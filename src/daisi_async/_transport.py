"""HTTP transport: an ``httpx.AsyncClient`` with auth, tenacity retries and error mapping.

This is the only module that sees ``httpx`` errors; everything above it sees
:class:`~._errors.DaisiError` subclasses. :func:`translate` is the one table from any
other exception (an httpx error, an exception group, a reply that does not parse) to
the :class:`~._errors.DaisiError` a public call raises.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import random
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import anyio
import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from ._config import RetryPolicy, Settings
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
from ._wire import API_PREFIX

if sys.version_info < (3, 11):  # pragma: no cover - anyio depends on the backport there
    from exceptiongroup import BaseExceptionGroup

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 507})
NOT_PROCESSED_STATUSES = frozenset({429, 503, 507})
# 503 and 507 are also the runtime's storage errors (storage_error, storage_full): the
# request was not acted on (a refused submission is never created), so it is retried.
"""Statuses that say the request was not acted on: safe to retry even a plain POST."""


UPLOAD_CHUNK = 1 << 20


async def _slices(view: memoryview) -> AsyncIterator[bytes]:
    for start in range(0, len(view), UPLOAD_CHUNK):
        yield bytes(view[start : start + UPLOAD_CHUNK])


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _wait(policy: RetryPolicy) -> Any:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableStatus):
            after = _retry_after(exc.response)
            if after is not None:
                return min(after, policy.max_retry_after)
        ceiling = min(policy.max_backoff, policy.backoff * 2 ** (state.attempt_number - 1))
        return random.uniform(0, ceiling)

    return wait


REPLY_ERRORS = (httpx.DecodingError, ValueError, LookupError, TypeError, AttributeError)
"""What reading a garbled reply raises: bad gzip, JSON / Unicode / base64 errors (all
``ValueError``), missing keys or items, values of the wrong type."""


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else repr(exc)


def translate(exc: BaseException, where: str) -> BaseException:
    """The one error table: what a public call raises for ``exc``, met talking to ``where``.

    A :class:`DaisiError` and a cancellation (any non-``Exception``) come back unchanged,
    and so does a group holding one. A group of one error becomes that error's
    translation; of several, a :class:`DaisiError` listing them. httpx timeouts become
    :class:`DaisiTimeoutError`; other transport failures and ``OSError``
    :class:`DaisiConnectionError`; a reply that does not decode or has the wrong shape
    :class:`DaisiProtocolError`; anything else a plain :class:`DaisiError`. The new
    error's ``__cause__`` is the original (raise it ``from`` its cause).

    Example:
        >>> err = translate(ExceptionGroup("g", [httpx.ConnectError("refused")]), "http://h")
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
            f"{len(leaves)} errors talking to {where}: " + "; ".join(map(_describe, leaves))
        )
        several.__cause__ = exc
        return several
    if isinstance(exc, DaisiError) or not isinstance(exc, Exception):
        return exc
    err: DaisiError
    if isinstance(exc, _RetryableStatus):
        err = error_from_response(exc.response)
    elif isinstance(exc, httpx.TimeoutException):
        err = DaisiTimeoutError(f"the request to {where} timed out: {exc!r}")
    elif isinstance(exc, (httpx.ConnectError, httpx.UnsupportedProtocol)):
        err = DaisiConnectionError(f"could not reach {where}: {exc!r}")
    elif isinstance(exc, (httpx.TransportError, OSError)):
        err = DaisiConnectionError(f"the connection to {where} failed: {exc!r}")
    elif isinstance(exc, REPLY_ERRORS):
        err = DaisiProtocolError(
            f"the reply from {where} is not what a Daisi runtime sends "
            f"({_describe(exc)}); is this the URL of a Daisi server?"
        )
    else:
        err = DaisiError(f"talking to {where} failed: {_describe(exc)}")
    err.__cause__ = exc
    return err


def reply_errors(where: str | Callable[[], str]) -> _ReplyErrors:
    """Raise what :func:`translate` makes of any error in the block (reading a reply).

    ``where`` (a URL, or a function giving one) is only looked at if something fails.

    Example:
        >>> with reply_errors("http://h/x"):  # doctest: +SKIP
        ...     value = json.loads(line)["id"]
    """
    return _ReplyErrors(where)


class _ReplyErrors:
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


P = ParamSpec("P")
T = TypeVar("T")


class _HasTransport(Protocol):
    transport: Transport


S = TypeVar("S", bound=_HasTransport)


def replies(
    fn: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """Decorate a dialect method that reads replies: errors go through :func:`translate`."""

    @functools.wraps(fn)
    async def guarded(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(self, *args, **kwargs)
        except BaseException as exc:
            err = translate(exc, f"{self.transport.api} ({fn.__name__})")
            if err is exc:
                raise
            raise err from err.__cause__

    return guarded


def reply_stream(
    fn: Callable[Concatenate[S, P], AsyncIterator[T]],
) -> Callable[Concatenate[S, P], AsyncIterator[T]]:
    """:func:`replies` for an async generator method."""

    @functools.wraps(fn)
    async def guarded(self: S, /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        items = fn(self, *args, **kwargs)
        try:
            with reply_errors(lambda: f"{self.transport.api} ({fn.__name__})"):
                async for item in items:
                    yield item
        finally:
            await items.aclose()  # type: ignore[attr-defined]

    return guarded


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


def error_from_response(response: httpx.Response) -> DaisiError:
    """The :class:`DaisiError` of a non-2xx reply, with the server's message."""
    code = response.status_code
    param: str | None = None
    try:
        body = response.json()
        err = body.get("error", body) if isinstance(body, dict) else {}
        message = str(err.get("message") or err) if isinstance(err, dict) else str(body)
        param = err.get("param") if isinstance(err, dict) else None
    except Exception:
        message = response.text[:500] or response.reason_phrase
    message = f"{message} (HTTP {code})"
    if code == 404:
        return DaisiNotFoundError(message, status_code=code)
    if code == 401:
        return DaisiAuthenticationError(message, status_code=code)
    if code == 403:
        return DaisiPermissionError(message, status_code=code)
    if code == 422:
        return DaisiArgumentError(message, param=param, status_code=code)
    if 400 <= code < 500:
        return DaisiRequestError(message, status_code=code)
    return DaisiServerError(message, status_code=code)


class Transport:
    """Sends requests to one Daisi server.

    ``idempotent`` requests (GETs, submissions carrying an idempotency key, uploads) are
    retried on any transient failure; other POSTs only when the request was surely not
    acted on (connection refused, 429, 503).
    """

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._owns_client = client is None
        self.client = client or httpx.AsyncClient(timeout=settings.timeout)
        base = settings.base_url
        if client is not None and not settings.base_url and str(client.base_url):
            base = str(client.base_url).rstrip("/")
        self.api = base + API_PREFIX
        self.headers: dict[str, str] = {"User-Agent": "daisi-async"}
        if settings.access_token:
            self.headers["Authorization"] = f"token {settings.access_token}"

    async def aclose(self) -> None:
        """Close the client if this transport created it."""
        if self._owns_client:
            await self.client.aclose()

    def _failure(self, path: str, exc: BaseException) -> BaseException:
        """The DaisiError for a request that failed after its retries (see :func:`translate`)."""
        return translate(exc, self.api + path)

    def _retrying(self, idempotent: bool) -> AsyncRetrying:
        policy = self.settings.retries

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, _RetryableStatus):
                return idempotent or exc.response.status_code in NOT_PROCESSED_STATUSES
            if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
                return True
            return idempotent and isinstance(exc, httpx.TransportError)

        return AsyncRetrying(
            stop=stop_after_attempt(max(1, policy.attempts)),
            wait=_wait(policy),
            retry=retry_if_exception(retryable),
            sleep=anyio.sleep,
            reraise=True,
        )

    def _build(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        content: Any,
        headers: Mapping[str, str] | None,
        timeout: httpx.Timeout | float | None,
    ) -> httpx.Request:
        hdrs = dict(self.headers)
        if headers:
            hdrs.update(headers)
        if isinstance(content, (bytearray, memoryview)) or (
            isinstance(content, bytes) and len(content) > UPLOAD_CHUNK
        ):
            if len(content) > UPLOAD_CHUNK:
                # Large bodies go out in slices: no joined copy of the whole payload.
                hdrs["content-length"] = str(len(content))
                content = _slices(memoryview(content))
            else:
                content = bytes(content)
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = timeout
        try:
            return self.client.build_request(
                method,
                self.api + path,
                params=params,
                json=json,
                content=content,
                headers=hdrs,
                **extra,
            )
        except (TypeError, ValueError, httpx.InvalidURL) as exc:  # never retried
            raise DaisiError(
                f"the request {method} {self.api}{path} could not be encoded: {_describe(exc)}"
            ) from exc

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        timeout: httpx.Timeout | float | None = None,
        allow: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """Send with retries; a non-2xx reply (not in ``allow``) raises its DaisiError."""
        idem = method in ("GET", "HEAD", "PUT", "DELETE") if idempotent is None else idempotent
        try:
            async for attempt in self._retrying(idem):
                with attempt:
                    request = self._build(
                        method, path, params=params, json=json, content=content,
                        headers=headers, timeout=timeout,
                    )  # fmt: skip
                    response = await self.client.send(request)
                    if response.status_code in RETRY_STATUSES and response.status_code not in allow:
                        raise _RetryableStatus(response)
        except BaseException as exc:
            err = self._failure(path, exc)
            if err is exc:
                raise
            raise err from err.__cause__
        if response.is_success or response.status_code in allow:
            return response
        raise error_from_response(response)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
        timeout: httpx.Timeout | float | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """A streamed reply, opened with retries; errors raise before the body is read."""
        response: httpx.Response | None = None
        try:
            async for attempt in self._retrying(idempotent):
                with attempt:
                    request = self._build(
                        method, path, params=params, json=json, content=None,
                        headers=headers, timeout=timeout,
                    )  # fmt: skip
                    response = await self.client.send(request, stream=True)
                    if response.status_code in RETRY_STATUSES:
                        await response.aread()  # small error body, kept for the message
                        await response.aclose()
                        raise _RetryableStatus(response)
        except BaseException as exc:
            err = self._failure(path, exc)
            if err is exc:
                raise
            raise err from err.__cause__
        assert response is not None
        try:
            if not response.is_success:
                with reply_errors(self.api + path):
                    await response.aread()
                raise error_from_response(response)
            yield response
        finally:
            await response.aclose()


def stream_errors(response: httpx.Response) -> _ReplyErrors:
    """Context manager translating errors raised while reading (and parsing) a streamed
    body: a dropped connection, a timeout, lines that are not what a server sends."""
    return reply_errors(lambda: str(response.request.url))
