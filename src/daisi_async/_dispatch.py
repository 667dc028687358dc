"""Shared waiting: one-shot slots, a background-task spawner, and batching helpers.

Many executions share few requests: submissions issued in the same turn of the event
loop travel in one batch, and pending executions are waited for over one multiplexed
stream. The requests run in background tasks (the ``AsyncDaisi`` task group, or the
asyncio loop); waiters only wait on a :class:`Slot`, so cancelling a waiter stops its
wait and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import TaskGroup

T = TypeVar("T")


class Slot(Generic[T]):
    """A value (or an error) that arrives once; any number of tasks may wait for it."""

    __slots__ = ("__weakref__", "_error", "_event", "_value", "done")

    def __init__(self) -> None:
        self.done = False
        self._value: T | None = None
        self._error: BaseException | None = None
        self._event: _Event | None = None

    def set(self, value: T) -> None:
        """Deliver the value (later deliveries are ignored)."""
        if not self.done:
            self._value, self.done = value, True
            if self._event is not None:
                self._event.set()

    def fail(self, error: BaseException) -> None:
        """Deliver an error (later deliveries are ignored)."""
        if not self.done:
            self._error, self.done = error, True
            if self._event is not None:
                self._event.set()

    def value(self) -> T:
        """The delivered value, or raise the delivered error."""
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    async def wait(self) -> T:
        """Wait for delivery, then return the value (or raise the error)."""
        if not self.done:
            if self._event is None:
                self._event = _new_event()
            await self._event.wait()
        return self.value()


class Signal:
    """A resettable notification: ``wait()`` returns after the next ``fire()``."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: _Event | None = None

    def fire(self) -> None:
        """Wake every current waiter."""
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self) -> None:
        """Wait for the next :meth:`fire`."""
        if self._event is None:
            self._event = _new_event()
        await self._event.wait()


class _FutureEvent:
    """An event made of asyncio futures, one per waiter: what ``anyio.Event`` does on
    asyncio, without looking up the async library at each creation and wait (every
    call waits on two of them)."""

    __slots__ = ("_is_set", "_waiters")

    def __init__(self) -> None:
        self._is_set = False
        self._waiters: list[asyncio.Future[None]] = []

    def set(self) -> None:
        self._is_set = True
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait(self) -> None:
        if self._is_set:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        finally:
            if not fut.done() or fut.cancelled():
                with contextlib.suppress(ValueError):
                    self._waiters.remove(fut)


_Event = _FutureEvent | anyio.Event


def on_asyncio() -> bool:
    """Whether the caller runs in an asyncio task (not on trio, say)."""
    try:
        return asyncio.current_task() is not None
    except RuntimeError:  # no asyncio loop here
        return False


def _new_event() -> _Event:
    """An event for the running async library: futures on asyncio, anyio's elsewhere."""
    return _FutureEvent() if on_asyncio() else anyio.Event()


class Spawner:
    """Starts background tasks in a task group, or on the asyncio loop, or reports it can't."""

    def __init__(self) -> None:
        self.task_group: TaskGroup | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def can_spawn(self) -> bool:
        """Whether background tasks are available here (else callers work inline)."""
        if self.task_group is not None:
            return True
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    def spawn(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in the background; exceptions are the function's own business."""
        if self.task_group is not None:
            self.task_group.start_soon(fn, *args)
            return
        task = asyncio.get_running_loop().create_task(_run(fn, *args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Cancel the asyncio tasks started outside a task group."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t


async def _run(fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
    await fn(*args)
