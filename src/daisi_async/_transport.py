"""HTTP transport: an ``httpx.AsyncClient`` with auth, tenacity retries and error mapping.

This is the only module that sees ``httpx`` errors; everything above it sees
:class:`~._errors.DaisiError` subclasses.
"""

from __future__ import annotations

import contextlib
import email.utils
import random
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

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
    DaisiRequestError,
    DaisiServerError,
    DaisiTimeoutError,
)
from ._wire import API_PREFIX

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
NOT_PROCESSED_STATUSES = frozenset({429, 503})
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

    def _failure(self, path: str, exc: Exception) -> DaisiError:
        """The DaisiError for a request that failed after its retries."""
        if isinstance(exc, _RetryableStatus):
            return error_from_response(exc.response)
        if isinstance(exc, httpx.TimeoutException):
            return DaisiTimeoutError(f"the request to {self.api}{path} timed out: {exc!r}")
        return DaisiConnectionError(f"could not reach {self.api}{path}: {exc!r}")

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
        return self.client.build_request(
            method,
            self.api + path,
            params=params,
            json=json,
            content=content,
            headers=hdrs,
            **extra,
        )

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
        except (_RetryableStatus, httpx.TransportError) as exc:
            raise self._failure(path, exc) from exc
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
        except (_RetryableStatus, httpx.TransportError) as exc:
            raise self._failure(path, exc) from exc
        assert response is not None
        try:
            if not response.is_success:
                await response.aread()
                raise error_from_response(response)
            yield response
        finally:
            await response.aclose()


def stream_errors() -> Any:
    """Context manager translating httpx errors raised while reading a streamed body."""
    return _StreamErrors()


class _StreamErrors:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if isinstance(exc, httpx.TimeoutException):
            raise DaisiTimeoutError(f"reading the reply timed out: {exc!r}") from exc
        if isinstance(exc, httpx.TransportError):
            raise DaisiConnectionError(f"the connection dropped: {exc!r}") from exc
