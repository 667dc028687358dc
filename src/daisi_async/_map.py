"""``d.map(...)`` and ``d.as_completed(...)``: many calls with a bound on those in flight."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import anyio

from ._errors import DaisiError
from ._execution import AsyncDaisiExecution

if TYPE_CHECKING:
    from ._daisi import AsyncDaisi

__all__ = ["MapRun"]


def _call(daisi: AsyncDaisi, endpoint: str, item: Any) -> AsyncDaisiExecution:
    if isinstance(item, dict):
        return daisi.call(endpoint, **item)
    if isinstance(item, tuple):
        return daisi.call(endpoint, *item)
    return daisi.call(endpoint, item)


class MapRun:
    """The executions of one ``map``: an async iterator of results, or awaitable as a list.

    At most ``max_concurrency`` executions are in flight at once. With ``ordered=True``
    results come in input order, else as they complete. Unless ``return_exceptions``,
    the first failure cancels the executions still running and is raised.

    Example:
        >>> async for total in d.map("compute", [{"firstNumber": i, "secondNumber": 1}
        ...                                      for i in range(100)], max_concurrency=10):
        ...     print(total)  # doctest: +SKIP
    """

    def __init__(
        self,
        daisi: AsyncDaisi,
        endpoint: str,
        items: Iterable[Any],
        *,
        max_concurrency: int = 64,
        ordered: bool = True,
        return_exceptions: bool = False,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.daisi = daisi
        self.endpoint = endpoint
        self.max_concurrency = max_concurrency
        self.ordered = ordered
        self.return_exceptions = return_exceptions
        # Bind every item up front: wrong arguments fail before anything is sent.
        self._pending: Iterator[AsyncDaisiExecution] = iter(
            [_call(daisi, endpoint, item) for item in items]
        )
        self.executions: list[AsyncDaisiExecution] = []
        self._start_errors: dict[AsyncDaisiExecution, Exception] = {}

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    def __await__(self) -> Generator[Any, None, list[Any]]:
        return self._collect().__await__()

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

    async def _outcome(self, ex: AsyncDaisiExecution) -> Any:
        try:
            error = self._start_errors.pop(ex, None)
            if error is not None:
                raise error
            return await ex
        except Exception as exc:
            if not self.return_exceptions:
                await self._cancel_rest()
                raise
            return exc

    async def _iterate(self) -> AsyncIterator[Any]:
        window: list[AsyncDaisiExecution] = []
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
        with anyio.CancelScope(shield=True):
            for ex in self.executions:
                # Best effort: a failure here must not hide the error being raised.
                with contextlib.suppress(DaisiError):
                    if ex.started and not (await ex.status()).is_terminal:
                        await ex.cancel()
            for ex in self._pending:
                self.executions.append(ex)
