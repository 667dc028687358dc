"""``d.map(...)`` and ``d.as_completed(...)``: many calls with a bound on those in flight."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio

from ._closing import AsyncClosing
from ._errors import DaisiError
from ._execution import AsyncDaisiExecution
from ._progress import Tally, check_progress
from ._public import public

__all__ = ["MapOptions", "MapRun", "gather"]


@dataclass(frozen=True)
class MapOptions:
    """How a map runs: the bound on executions in flight, the order of results,
    whether failures are returned (else the first one is raised), and whether a
    progress bar is drawn (``True``, or the ``rich.console.Console`` to draw it on)."""

    max_concurrency: int = 64
    ordered: bool = True
    return_exceptions: bool = False
    progress: object = False

    def __post_init__(self) -> None:
        n = self.max_concurrency
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"max_concurrency must be an int, not {type(n).__name__}")
        if n < 1:
            raise ValueError(f"max_concurrency must be at least 1, not {n}")
        check_progress(self.progress)


def _one_call(
    call: Callable[..., AsyncDaisiExecution], endpoint: str, item: Any
) -> AsyncDaisiExecution:
    if isinstance(item, dict):
        return call(endpoint, **item)
    if isinstance(item, tuple):
        return call(endpoint, *item)
    return call(endpoint, item)


@public
class MapRun(AsyncClosing):
    """The executions of one ``map``: an async iterator of results, or awaitable as a list.

    At most ``max_concurrency`` executions are in flight at once. With ``ordered=True``
    results come in input order, else as they complete. Unless ``return_exceptions``,
    the first failure cancels the executions still running and is raised.

    Stopping early (``aclose()``, or leaving ``async with d.map(...) as run:``) cancels
    the executions in flight and starts no more.

    With ``progress=True`` a bar shows the executions done, failed and running (submitted,
    outcome not received yet) and the rate, while the run is iterated or awaited.

    Example:
        >>> items = [{"firstNumber": i, "secondNumber": 1} for i in range(5)]
        >>> [total async for total in d.map("compute", items, max_concurrency=2)]
        [1, 2, 3, 4, 5]
        >>> async with d.map("compute", items) as run:
        ...     async for total in run:
        ...         break  # the rest is cancelled when the block ends
    """

    def __init__(
        self,
        call: Callable[..., AsyncDaisiExecution],
        endpoint: str,
        items: Iterable[Any],
        options: MapOptions,
        *,
        label: str = "",
    ) -> None:
        self.endpoint = endpoint
        self.max_concurrency = options.max_concurrency
        self.ordered = options.ordered
        self.return_exceptions = options.return_exceptions
        # Bind every item up front: wrong arguments fail before anything is sent.
        bound = [_one_call(call, endpoint, item) for item in items]
        self._pending: Iterator[AsyncDaisiExecution] = iter(bound)
        self._tally = Tally.of(options.progress, total=len(bound), label=label or endpoint)
        self.executions: list[AsyncDaisiExecution] = []
        self._start_errors: dict[AsyncDaisiExecution, Exception] = {}
        self.closed = False
        """True once the run is over: every result delivered, or stopped early."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    def __await__(self) -> Generator[Any, None, list[Any]]:
        return self._collect().__await__()

    def _show_progress(self) -> None:
        """Draw the progress bar now, from the calling thread (the blocking face calls
        this from the caller's thread, so that in Jupyter the bar shows in the cell that
        asked for it); iterating draws it anyway."""
        if self._tally is not None:
            self._tally.start()

    def _hide_progress(self) -> None:
        """Stop drawing the bar (a no-op once stopped)."""
        if self._tally is not None:
            self._tally.stop()

    async def aclose(self) -> None:
        """Stop: cancel the executions in flight and start no more (a no-op once over)."""
        if not self.closed:
            await self._cancel_rest()

    async def _collect(self) -> list[Any]:
        return [value async for value in self._iterate()]

    async def _fill(self, window: list[AsyncDaisiExecution]) -> None:
        new: list[AsyncDaisiExecution] = []
        while len(window) + len(new) < self.max_concurrency:
            ex = next(self._pending, None)
            if ex is None:
                break
            new.append(ex)
        if not new:
            return
        self.executions.extend(new)
        window.extend(new)
        async with anyio.create_task_group() as tg:  # submitted together: one batch
            for ex in new:
                tg.start_soon(self._start, ex)

    async def _start(self, ex: AsyncDaisiExecution) -> None:
        # A submission that fails is that item's outcome, not the whole group's.
        try:
            await ex.start()
        except Exception as exc:
            self._start_errors[ex] = exc
        else:
            if self._tally is not None:
                self._tally.submitted()

    async def _outcome(self, ex: AsyncDaisiExecution) -> Any:
        error = self._start_errors.pop(ex, None)
        try:
            if error is not None:
                raise error
            value = await ex
        except Exception as exc:
            if self._tally is not None:
                self._tally.ended(ok=False, submitted=error is None)
            if not self.return_exceptions:
                raise
            return exc
        if self._tally is not None:
            self._tally.ended(ok=True)
        return value

    async def _iterate(self) -> AsyncIterator[Any]:
        window: list[AsyncDaisiExecution] = []
        self._show_progress()
        try:
            await self._fill(window)
            while window:
                if self.ordered:
                    ex = window.pop(0)
                else:
                    ex = await self._first_done(window)
                    window.remove(ex)
                value = await self._outcome(ex)
                await self._fill(window)
                yield value
            self.closed = True
        finally:
            if not self.closed:  # a failure, a cancellation, or the consumer stopped
                await self._cancel_rest()
            self._hide_progress()

    async def _first_done(self, window: list[AsyncDaisiExecution]) -> AsyncDaisiExecution:
        for ex in window:
            if ex in self._start_errors:  # never submitted: done at once
                return ex
        winner: list[AsyncDaisiExecution] = []
        async with anyio.create_task_group() as tg:

            async def watch(ex: AsyncDaisiExecution) -> None:
                with contextlib.suppress(Exception):  # ended too: awaiting it raises
                    await ex.wait()
                winner.append(ex)
                tg.cancel_scope.cancel()

            for ex in window:
                tg.start_soon(watch, ex)
        return winner[0]

    async def _cancel_rest(self) -> None:
        self.closed = True
        self.executions.extend(self._pending)  # never started: they stay NOT_STARTED
        running = [ex for ex in self.executions if ex.started and not ex.last_status.is_terminal]
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                for ex in running:
                    tg.start_soon(_cancel, ex)


async def _cancel(ex: AsyncDaisiExecution) -> None:
    # Best effort: a failure here must not hide the error being raised.
    with contextlib.suppress(DaisiError):
        await ex.cancel()


async def gather(executions: list[AsyncDaisiExecution], tally: Tally | None) -> list[Any]:
    """Every value, in order, or the first failure in argument order (as reading each
    ``.value`` in turn would raise): a failure stops the waits for the later ones.

    The core of ``Daisi.run_parallel``; ``tally`` counts for a progress bar."""
    results: list[Any] = [None] * len(executions)
    errors: dict[int, Exception] = {}
    scopes = [anyio.CancelScope() for _ in executions]

    async def one(i: int, ex: AsyncDaisiExecution) -> None:
        with scopes[i]:
            try:
                await ex.start()
            except Exception as exc:
                errors[i] = exc
                if tally is not None:
                    tally.ended(ok=False, submitted=False)
            else:
                if tally is not None:
                    tally.submitted()
                try:
                    results[i] = await ex
                except Exception as exc:
                    errors[i] = exc
                    if tally is not None:
                        tally.ended(ok=False)
                else:
                    if tally is not None:
                        tally.ended(ok=True)
            if i in errors:
                for later in scopes[i + 1 :]:
                    later.cancel()

    if tally is not None:
        tally.start()
    try:
        async with anyio.create_task_group() as tg:
            for i, ex in enumerate(executions):
                tg.start_soon(one, i, ex)
    finally:
        if tally is not None:
            tally.stop()
    if errors:
        raise errors[min(errors)]
    return results
