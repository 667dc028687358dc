"""The one retry policy: tenacity, built from a :class:`~._config.RetryPolicy`.

Every retried thing goes through :func:`retrying`: requests, streams opened, batches
resent after a drop, multiplexed waits and event streams resumed. Waits grow
exponentially with full jitter; a server's ``Retry-After`` (or an event stream's
``retry:`` field) is honoured up to ``max_retry_after``. Each retry is logged on the
``daisi_async`` logger, with its cause.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from ._config import RetryPolicy
from ._failures import RetryableStatus
from ._log import logger

__all__ = ["Progress", "retry_after", "retry_call", "retrying"]

T = TypeVar("T")


def retry_after(response: httpx.Response) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds (None if absent or bad)."""
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


class Progress:
    """For a stream that is resumed: attempts count from its last progress.

    Call :meth:`made` when the stream delivers something; a later drop then starts a
    fresh series of ``attempts``. ``server_wait`` is the reconnection time the server
    asked for (an SSE ``retry:`` field), used instead of the backoff.
    """

    __slots__ = ("_base", "_moved", "server_wait")

    def __init__(self) -> None:
        self._base = 0
        self._moved = False
        self.server_wait: float | None = None

    def made(self) -> None:
        """Something arrived: the next failure is the first of a new series."""
        self._moved = True

    def attempt(self, state: RetryCallState) -> int:
        """The attempt number since the last progress (1 for the first failure)."""
        if self._moved:
            self._moved = False
            self._base = state.attempt_number - 1
        return state.attempt_number - self._base


def retrying(
    policy: RetryPolicy,
    *,
    retry: Callable[[BaseException], bool],
    what: str | Callable[[], str],
    progress: Progress | None = None,
    failed: int = 0,
) -> AsyncRetrying:
    """A tenacity ``AsyncRetrying`` for ``policy``: retries failures that ``retry`` accepts.

    ``what`` names the thing retried in the log (a string, or a function giving one).

    Example:
        >>> tries = []
        >>> async for attempt in retrying(RetryPolicy(backoff=0), retry=lambda e: True, what="x"):
        ...     with attempt:
        ...         tries.append(1)
        ...         if len(tries) < 3:
        ...             raise OSError("flaky")
        >>> len(tries)
        3
    """

    def number(state: RetryCallState) -> int:
        if progress is not None:
            return progress.attempt(state)
        return state.attempt_number + failed

    def stop(state: RetryCallState) -> bool:
        return number(state) >= policy.attempts

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        server = progress.server_wait if progress is not None else None
        return _backoff(policy, exc, number(state), server)

    def log(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        seconds = state.next_action.sleep if state.next_action else 0.0
        _log_retry(policy, what, exc, number(state), seconds)

    def retryable(exc: BaseException) -> bool:
        return isinstance(exc, Exception) and retry(exc)

    return AsyncRetrying(
        stop=stop,
        wait=wait,
        retry=retry_if_exception(retryable),
        before_sleep=log,
        sleep=anyio.sleep,
        reraise=True,
    )


def _backoff(
    policy: RetryPolicy, exc: BaseException | None, number: int, server_wait: float | None
) -> float:
    """Seconds to wait after failed attempt ``number``: the server's ``Retry-After`` (or
    ``retry:``) up to ``max_retry_after``, else exponential backoff with full jitter."""
    if isinstance(exc, RetryableStatus):
        after = retry_after(exc.response)
        if after is not None:
            return min(after, policy.max_retry_after)
    if server_wait is not None:
        return min(server_wait, policy.max_retry_after)
    ceiling = min(policy.max_backoff, policy.backoff * 2 ** (number - 1))
    return random.uniform(0, ceiling)


def _log_retry(
    policy: RetryPolicy,
    what: str | Callable[[], str],
    exc: BaseException | None,
    number: int,
    seconds: float,
) -> None:
    cause = exc.__cause__ if exc is not None and exc.__cause__ is not None else exc
    logger.warning(
        "retrying %s in %.2f s (attempt %d of %d failed: %s: %s)",
        what if isinstance(what, str) else what(),
        seconds,
        number,
        policy.attempts,
        type(cause).__name__,
        cause,
    )


async def retry_call(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    retry: Callable[[BaseException], bool],
    what: str | Callable[[], str],
) -> T:
    """``await call()``, retried as :func:`retrying` would; the first attempt runs outside
    tenacity, which takes over only once it failed and may be retried (most calls succeed
    at once and pay nothing for the policy).

    Example:
        >>> tries = []
        >>> async def flaky() -> int:
        ...     tries.append(1)
        ...     if len(tries) < 3:
        ...         raise OSError("flaky")
        ...     return len(tries)
        >>> await retry_call(flaky, RetryPolicy(backoff=0), retry=lambda e: True, what="x")
        3
    """
    try:
        return await call()
    except Exception as exc:
        if policy.attempts <= 1 or not retry(exc):
            raise
        seconds = _backoff(policy, exc, 1, None)
        _log_retry(policy, what, exc, 1, seconds)
    await anyio.sleep(seconds)
    async for attempt in retrying(policy, retry=retry, what=what, failed=1):
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity re-raises the last failure")
