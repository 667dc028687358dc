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


class _Futures:
    """The asyncio futures of the tasks waiting on something, one per waiter (a waiter
    that stops waiting cancels only its own). The first is kept in a field of its own:
    most things have one waiter, and a fan-out keeps thousands waiting."""

    __slots__ = ("_first", "_more")

    def __init__(self) -> None:
        self._first: asyncio.Future[None] | None = None
        self._more: list[asyncio.Future[None]] | None = None

    def _new_waiter(self) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._first is None:
            self._first = fut
        elif self._more is None:
            self._more = [fut]
        else:
            self._more.append(fut)
        return fut

    def _forget(self, fut: asyncio.Future[None]) -> None:
        """After ``await fut``: a waiter that stopped waiting leaves no future behind."""
        if fut.done() and not fut.cancelled():
            return
        if self._first is fut:
            self._first = None
        elif self._more is not None:
            with contextlib.suppress(ValueError):
                self._more.remove(fut)

    def _wake_all(self) -> None:
        first, more = self._first, self._more
        self._first = self._more = None
        if first is not None and not first.done():
            first.set_result(None)
        for fut in more or ():
            if not fut.done():
                fut.set_result(None)


class Slot(_Futures, Generic[T]):
    """A value (or an error) that arrives once; any number of tasks may wait for it.

    On asyncio a waiter awaits a future of its own, held by the slot (no event object
    and no frame in between: a fan-out has a slot per call); elsewhere an
    ``anyio.Event``.
    """

    __slots__ = ("__weakref__", "_error", "_event", "_value", "done")

    def __init__(self) -> None:
        super().__init__()
        self.done = False
        self._value: T | None = None
        self._error: BaseException | None = None
        self._event: anyio.Event | None = None  # waiters not on asyncio

    def set(self, value: T) -> None:
        """Deliver the value (later deliveries are ignored)."""
        if not self.done:
            self._value, self.done = value, True
            self._wake()

    def fail(self, error: BaseException) -> None:
        """Deliver an error (later deliveries are ignored)."""
        if not self.done:
            self._error, self.done = error, True
            self._wake()

    def _wake(self) -> None:
        self._wake_all()
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
            if on_asyncio():
                fut = self._new_waiter()
                try:
                    await fut
                finally:
                    self._forget(fut)
            else:
                if self._event is None:
                    self._event = anyio.Event()
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

    def wait(self) -> Coroutine[Any, Any, None]:
        """Wait for the next :meth:`fire` (the event's own wait: no frame of its own)."""
        if self._event is None:
            self._event = _new_event()
        return self._event.wait()


class _FutureEvent(_Futures):
    """An event made of asyncio futures, one per waiter: what ``anyio.Event`` does on
    asyncio, without looking up the async library at each creation and wait."""

    __slots__ = ("_is_set",)

    def __init__(self) -> None:
        super().__init__()
        self._is_set = False

    def set(self) -> None:
        self._is_set = True
        self._wake_all()

    async def wait(self) -> None:
        if self._is_set:
            return
        fut = self._new_waiter()
        try:
            await fut
        finally:
            self._forget(fut)


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
