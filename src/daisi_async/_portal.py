"""One process-wide background event loop for the blocking facade.

Every ``Daisi`` call runs on a single daemon thread (``daisi-async-loop``) through an
anyio :class:`~anyio.from_thread.BlockingPortal`, so the facade works in plain scripts,
inside Jupyter and in threads that already run an event loop. The thread starts with
the first ``Daisi`` and stops when the last one is closed (or at exit); after ``fork``
the child starts afresh. A call made from the loop thread itself raises instead of
deadlocking; Ctrl-C interrupts a blocking wait promptly.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import os
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Generic, TypeVar

import anyio
import httpx
from anyio.from_thread import BlockingPortal

from ._closing import Closing
from ._config import DEFAULT_TIMEOUT
from ._errors import DaisiError
from ._transport import plain_client

T = TypeVar("T")

THREAD_NAME = "daisi-async-loop"


class _Loop:
    """The running loop thread, its portal and the shared HTTP client."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.portal: BlockingPortal | None = None
        self.client: httpx.AsyncClient | None = None
        self.users = 0

    def start(self) -> None:
        ready: queue.Queue[BlockingPortal | BaseException] = queue.Queue()

        async def main() -> None:
            try:
                async with BlockingPortal() as portal:
                    client = self.client = plain_client(timeout=DEFAULT_TIMEOUT)
                    ready.put(portal)
                    try:
                        await portal.sleep_until_stopped()
                    finally:
                        with anyio.CancelScope(shield=True):
                            await client.aclose()
            except BaseException as exc:  # pragma: no cover - startup failure
                ready.put(exc)
                raise

        self.thread = threading.Thread(
            target=anyio.run, args=(main,), name=THREAD_NAME, daemon=True
        )
        self.thread.start()
        got = ready.get()
        if isinstance(got, BaseException):  # pragma: no cover
            raise got
        self.portal = got

    def stop(self) -> None:
        portal, thread = self.portal, self.thread
        self.portal = self.thread = self.client = None
        alive = portal is not None and thread is not None and thread.is_alive()
        if alive and threading.current_thread() is not thread:
            assert portal is not None and thread is not None
            with contextlib.suppress(RuntimeError):  # the loop already ended
                portal.call(portal.stop, True)
            thread.join(timeout=5)


_lock = threading.Lock()
_loop = _Loop()


def acquire() -> None:
    """Count one more user of the loop, starting it if needed."""
    with _lock:
        if _loop.portal is None:
            _loop.start()
        _loop.users += 1


def release() -> None:
    """Count one user less; the last one stops the loop and closes the client."""
    with _lock:
        _loop.users = max(0, _loop.users - 1)
        if _loop.users == 0:
            _loop.stop()


def call_briefly(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """:func:`call` with the loop held only for this call (started and stopped if no one
    else uses it): for one-off calls that belong to no ``Daisi``."""
    acquire()
    try:
        return call(fn, *args)
    finally:
        release()


def shared_client() -> httpx.AsyncClient:
    """The connection pool shared by every ``Daisi`` (valid while acquired)."""
    if _loop.client is None:
        raise RuntimeError("the daisi-async loop is not running")
    return _loop.client


def loop_thread() -> threading.Thread | None:
    """The background loop thread, if running."""
    return _loop.thread


def _portal() -> BlockingPortal:
    if threading.current_thread() is _loop.thread:
        raise RuntimeError(
            "a blocking Daisi call was made from the daisi-async event loop thread, which "
            "would deadlock; use AsyncDaisi (await ...) in async code running there"
        )
    portal = _loop.portal
    if portal is None:
        raise DaisiError("this Daisi is closed")
    return portal


def call(
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    on_interrupt: Callable[[], Awaitable[Any]] | None = None,
) -> T:
    """Run ``fn(*args)`` on the loop and wait for it.

    Ctrl-C (KeyboardInterrupt) cancels the task at once, runs
    ``on_interrupt`` there (bounded to a few seconds) and re-raises.
    """
    portal = _portal()
    future: concurrent.futures.Future[T] = portal.start_task_soon(fn, *args)
    try:
        # An untimed wait: a lock acquire, which Ctrl-C (SIGINT) interrupts at once.
        return future.result()
    except KeyboardInterrupt:
        future.cancel()
        if on_interrupt is not None:
            cleanup = portal.start_task_soon(_bounded, on_interrupt)
            try:
                cleanup.result(timeout=3)
            except BaseException:  # best effort: never mask the interrupt
                cleanup.cancel()
        raise


async def _bounded(fn: Callable[[], Awaitable[Any]]) -> None:
    with anyio.move_on_after(2.5):
        await fn()


class SyncIterator(Closing, Iterator[T], Generic[T]):
    """The one bridge from an async iterator on the loop to a blocking iterator.

    Each ``next()`` runs one step on the loop. :meth:`close` (also on leaving a ``with``
    block, when the iterator is dropped, e.g. by ``break`` out of a ``for`` loop, and
    on Ctrl-C during a step) closes the async iterator, which stops the work it
    started (a map cancels its executions in flight).
    """

    def __init__(self, items: AsyncIterator[T]) -> None:
        self._items = items
        self._done = False

    def __iter__(self) -> SyncIterator[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        try:
            more, item = call(self._step)
        except BaseException:
            self.close()
            raise
        if not more:
            self._done = True
            raise StopIteration
        return item  # type: ignore[return-value]  # set whenever ``more``

    async def _step(self) -> tuple[bool, T | None]:
        try:
            return True, await self._items.__anext__()
        except StopAsyncIteration:
            return False, None

    async def _aclose(self) -> None:
        aclose = getattr(self._items, "aclose", None)
        if aclose is not None:
            await aclose()

    def close(self) -> None:
        """Close the async iterator (once); a no-op when it has ended."""
        if self._done:
            return
        self._done = True
        if threading.current_thread() is _loop.thread or _loop.portal is None:
            return  # dropped on the loop itself, or after the loop stopped: nothing to wait on
        with contextlib.suppress(Exception):
            call(self._aclose)

    def __del__(self) -> None:
        self.close()


def iterate(items: AsyncIterator[T]) -> SyncIterator[T]:
    """A blocking iterator over ``items`` (an async iterator to be read on the loop)."""
    return SyncIterator(items)


def _after_fork_in_child() -> None:
    global _lock, _loop
    _lock = threading.Lock()
    _loop = _Loop()


def _stop_at_exit() -> None:
    _loop.stop()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_stop_at_exit)
