"""HTTP transport: an ``httpx.AsyncClient`` with auth, the retry policy and the error table.

Requests and streams are retried by :mod:`._retry` and their failures become public
exceptions through :mod:`._failures`. Connection refused on a client's *first* request
fails at once (the server is most likely not running: waiting would only delay the
message that says so); later requests keep the full retry policy.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from typing import Any, TypeVar

import httpx

from ._config import Settings
from ._errors import DaisiError
from ._failures import (
    NOT_PROCESSED_STATUSES,
    RETRY_STATUSES,
    ReplyErrors,
    RetryableStatus,
    describe,
    error_from_response,
    reply_errors,
    translate,
)
from ._retry import retry_call
from ._wire import API_PREFIX

__all__ = ["Transport", "plain_client", "stream_errors"]

T = TypeVar("T")

_URL_CACHE = 256
"""Parsed URLs kept per transport (paths with ids beyond that are parsed again)."""

UPLOAD_CHUNK = 1 << 22
"""Large bodies are sent in slices of at most this many bytes (views, not copies)."""


async def _slices(parts: list[memoryview]) -> AsyncIterator[memoryview]:
    for part in parts:
        view = part.cast("B") if part.ndim != 1 or part.format != "B" else part
        for start in range(0, len(view), UPLOAD_CHUNK):
            yield view[start : start + UPLOAD_CHUNK]


class Transport:
    """Sends requests to one Daisi server.

    ``idempotent`` requests (GETs, submissions carrying an idempotency key, uploads) are
    retried on any transient failure; other POSTs only when the request was surely not
    acted on (connection refused, 429, 503, 507).
    """

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._owns_client = client is None
        self.client = client or plain_client(timeout=settings.timeout)
        base = settings.base_url
        if client is not None and not settings.base_url and str(client.base_url):
            base = str(client.base_url).rstrip("/")
        self.base_url = base
        self.api = base + API_PREFIX
        self.headers: dict[str, str] = {"User-Agent": "daisi-async"}
        if settings.access_token:
            self.headers["Authorization"] = f"token {settings.access_token}"
        self._timeout = self.client.timeout.as_dict()
        """The client's timeout as requests carry it (made once, not per request)."""
        self._urls: dict[Hashable, httpx.URL] = {}
        plain = client is None or client in _PLAIN  # one daisi-async made: nothing of a caller's
        self._direct = _direct_lane(self.client, self.api) if plain else None
        """The client's connection pool, when requests may go straight to it (see
        :meth:`_send_direct`); None to go through the client."""
        self.reached = False
        """Whether the server ever answered (until then, connection refused is final)."""

    @property
    def direct(self) -> bool:
        """Whether requests go straight to the client's connection pool (see
        :meth:`_send_direct`)."""
        return self._direct is not None

    def _url(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.URL:
        """The parsed URL of ``path`` with ``params`` (parsed once: most are used again)."""
        key: Hashable = (path, *params.items()) if params else path
        try:
            url = self._urls.get(key)
        except TypeError:  # a parameter value that is a list: not kept
            return httpx.URL(self.api + path, params=params)
        if url is None:
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()
            url = self._urls[key] = httpx.URL(self.api + path, params=params)
        return url

    async def aclose(self) -> None:
        """Close the client if this transport created it."""
        if self._owns_client:
            await self.client.aclose()

    def _retryable(self, idempotent: bool) -> Callable[[BaseException], bool]:
        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, RetryableStatus):
                return idempotent or exc.response.status_code in NOT_PROCESSED_STATUSES
            if isinstance(exc, httpx.ConnectError):
                return self.reached  # first contact refused: say so at once
            if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
                return True
            return idempotent and isinstance(exc, httpx.TransportError)

        return retryable

    def _build(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | float | None = None,
    ) -> httpx.Request:
        hdrs = dict(self.headers)
        if headers:
            hdrs.update(headers)
        if isinstance(content, (bytes, bytearray, memoryview)):
            content = [memoryview(content)]
        if isinstance(content, list):
            size = sum(p.nbytes for p in content)
            if size > UPLOAD_CHUNK:
                # Large bodies go out in slices: no joined copy of the whole payload.
                hdrs["content-length"] = str(size)
                content = _slices(content)
            else:
                content = b"".join(content)
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = timeout
        try:
            if self._direct is not None:  # nothing of a client to merge (no cookies either)
                limits = self._timeout if timeout is None else httpx.Timeout(timeout).as_dict()
                return httpx.Request(
                    method,
                    self._url(path, params),
                    json=json,
                    content=content,
                    headers=hdrs,
                    extensions={"timeout": limits},
                )
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
                f"the request {method} {self.api}{path} could not be encoded: {describe(exc)}"
            ) from exc

    async def _send(
        self, method: str, path: str, idempotent: bool, stream: bool, **build: Any
    ) -> httpx.Response:
        """Send with retries; returns the first reply whose status is not transient."""
        allow: frozenset[int] = build.pop("allow", frozenset())

        async def once() -> httpx.Response:
            request = self._build(method, path, **build)
            if self._direct is not None:
                response = await self._send_direct(self._direct, request, stream)
            else:
                response = await self.client.send(request, stream=stream)
            self.reached = True
            code = response.status_code
            if code in RETRY_STATUSES and code not in allow:
                if stream:
                    await response.aread()  # small error body, kept for the message
                    await response.aclose()
                raise RetryableStatus(response)
            return response

        return await self.retried(once, idempotent=idempotent, what=f"{method} {self.api}{path}")

    async def _send_direct(
        self, pool: httpx.AsyncBaseTransport, request: httpx.Request, stream: bool
    ) -> httpx.Response:
        """``request`` sent straight to the client's connection pool.

        The client this transport made has no auth, hooks, mounts or redirects to apply,
        and no proxy for this server; going round its layers saves a large part of a
        small request's cost (the cookie jar alone is a tenth of it). A server that sets
        cookies gets them kept and sent from then on: the client's own path takes over.
        """
        response = await pool.handle_async_request(request)
        response.request = request
        if "set-cookie" in response.headers:
            self.client.cookies.extract_cookies(response)
            self._direct = None
            _PLAIN.discard(self.client)  # it holds a cookie now: transports made later use it
        if not stream:
            try:
                await response.aread()
            except BaseException:
                await response.aclose()
                raise
        return response

    async def retried(self, once: Callable[[], Awaitable[T]], *, idempotent: bool, what: str) -> T:
        """``await once()`` (one attempt at a request) under the retry policy; a failure
        raises its public exception. ``what`` is ``"METHOD URL"``."""
        try:
            return await retry_call(
                once, self.settings.retries, retry=self._retryable(idempotent), what=what
            )
        except BaseException as exc:
            err = translate(exc, what.partition(" ")[2])
            if err is exc:
                raise
            raise err from err.__cause__

    async def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool | None = None,
        allow: frozenset[int] = frozenset(),
        **options: Any,
    ) -> httpx.Response:
        """Send with retries; a non-2xx reply (not in ``allow``) raises its DaisiError.

        ``options``: ``params``, ``json``, ``content``, ``headers``, ``timeout`` (as
        ``httpx`` takes them). Not ``idempotent`` (the default for POST): retried only
        when the server surely did not act on it.
        """
        idem = method in ("GET", "HEAD", "PUT", "DELETE") if idempotent is None else idempotent
        response = await self._send(method, path, idem, False, allow=allow, **options)
        if response.is_success or response.status_code in allow:
            return response
        raise error_from_response(response)

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, path: str, *, idempotent: bool = True, **options: Any
    ) -> AsyncIterator[httpx.Response]:
        """A streamed reply, opened with retries; errors raise before the body is read.

        ``options``: ``params``, ``json``, ``headers``, ``timeout``, as for :meth:`request`.
        """
        response = await self._send(method, path, idempotent, True, **options)
        try:
            if not response.is_success:
                with reply_errors(self.api + path):
                    await response.aread()
                raise error_from_response(response)
            yield response
        finally:
            await response.aclose()


_PLAIN: weakref.WeakSet[httpx.AsyncClient] = weakref.WeakSet()
"""The clients daisi-async made itself (see :func:`plain_client`)."""


def plain_client(*, timeout: float | httpx.Timeout | None) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` of daisi-async's own, with nothing of a caller's in it
    (no auth, hooks, mounts or transport): a :class:`Transport` on it may send straight
    to its connection pool, as on a client it made itself. The sync face shares one.

    Example:
        >>> client = plain_client(timeout=30.0)  # doctest: +SKIP
    """
    client = httpx.AsyncClient(timeout=timeout)
    _PLAIN.add(client)
    return client


def _direct_lane(client: httpx.AsyncClient, url: str) -> httpx.AsyncBaseTransport | None:
    """The connection pool ``client`` itself sends requests for ``url`` to, or None if it
    would use another (a proxy from the environment, a mount). httpx keeps both
    privately: without them, requests go through the client."""
    pool = getattr(client, "_transport", None)
    pick = getattr(client, "_transport_for_url", None)
    if not isinstance(pool, httpx.AsyncBaseTransport) or pick is None:
        return None
    try:
        return pool if pick(httpx.URL(url)) is pool else None
    except Exception:  # a changed private method: take the client's path
        return None


def stream_errors(response: httpx.Response) -> ReplyErrors:
    """Context manager translating errors raised while reading (and parsing) a streamed
    body: a dropped connection, a timeout, lines that are not what a server sends."""
    return reply_errors(lambda: str(response.request.url))
