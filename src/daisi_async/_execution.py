"""``AsyncDaisiExecution``: a lazy, awaitable handle on one remote execution."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Generator, Mapping
from typing import Any, Protocol

import anyio

from ._config import check_timeout
from ._dialects.base import Ref, RemoteState, new_key
from ._dispatch import Signal, Slot
from ._errors import DaisiTimeoutError
from ._public import public
from ._session import Session
from ._wire import ExecutionStatus

__all__ = ["AsyncDaisiExecution", "DaisiLike"]


class DaisiLike(Protocol):
    """What an execution knows of the Daisi object that made it (its ``.daisi``)."""

    @property
    def name(self) -> str:
        """The Daisi's name."""

    async def execution(self, execution_id: str) -> AsyncDaisiExecution:
        """Attach to an execution of this Daisi by id."""


_UNSET: Any = object()
_created = itertools.count()


@public
class AsyncDaisiExecution:
    """One call of a Daisi endpoint: lazy until started, awaitable for its result.

    Example:
        >>> async with AsyncDaisi("Add Two Numbers") as d:
        ...     ex = d.compute(firstNumber=5, secondNumber=6)   # not sent yet
        ...     print(await ex.status())
        ...     eid = await ex.start()                           # the execution id
        ...     print(await ex)
        NOT_STARTED
        11

    Passing a handle as an argument of another call sends a reference: the server
    resolves it when this execution ends, and its result never travels through here.
    """

    def __init__(
        self, session: Session, daisi: DaisiLike, endpoint: str, arguments: Mapping[str, Any]
    ) -> None:
        self._session = session
        self.daisi = daisi
        self.endpoint = endpoint
        self.arguments = dict(arguments)
        self.id: str | None = None
        self._key = new_key()
        self._order = next(_created)
        self._state: RemoteState | None = None
        self._last_status = ExecutionStatus.NOT_STARTED
        self._submitting = False
        self._starting: Slot[str] | None = None  # made by a second task that starts it
        self._result_slot: Slot[RemoteState] | None = None
        self._value: Any = _UNSET
        self._started: Signal | None = None  # made by the first who waits for the start

    def __repr__(self) -> str:
        return (
            f"<AsyncDaisiExecution {self.daisi.name}.{self.endpoint} "
            f"id={self.id} status={self._last_status.value}>"
        )

    # -- re-attach -------------------------------------------------------------------------
    @classmethod
    async def from_id(cls, daisi: DaisiLike, execution_id: str) -> AsyncDaisiExecution:
        """Attach to an execution made elsewhere (another process, yesterday).

        The same as ``await daisi.execution(execution_id)``. Raises
        :class:`DaisiNotFoundError` for an unknown id, ``TypeError`` for an id that is
        not a ``str`` and ``ValueError`` for an empty one or one that is not valid
        Unicode.

        Example:
            >>> ex = await AsyncDaisiExecution.from_id(d, (await d.compute_(1, 2)).id)
            >>> await ex
            3
        """
        return await daisi.execution(execution_id)

    @classmethod
    async def _attach(
        cls, session: Session, daisi: DaisiLike, execution_id: str
    ) -> AsyncDaisiExecution:
        dialect = await session.ready()
        state = await dialect.fetch(session.daisi_id, execution_id)
        ex = cls(session, daisi, "", {})
        ex.id = execution_id
        ex._observe(state)
        return ex

    # -- starting --------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        """Whether the execution was submitted."""
        return self.id is not None

    @property
    def last_status(self) -> ExecutionStatus:
        """The last status this handle saw (no request; ``await ex.status()`` asks)."""
        return self._last_status

    async def start(self) -> str:
        """Submit the execution (once; later calls return the same id).

        Example:
            >>> ex = d.compute(firstNumber=1, secondNumber=2)
            >>> eid = await ex.start()
            >>> eid == ex.id == await ex.start()
            True
        """
        return await self._start()

    async def _start(self, *, linger: bool = False) -> str:
        """:meth:`start`; ``linger``: the end is awaited next (see ``Dialect.submit``)."""
        if self.id is not None:
            return self.id
        if self._submitting:  # another task submits it: wait for its id (or its error)
            if self._starting is None:
                self._starting = Slot()
            return await self._starting.wait()
        self._submitting = True
        try:
            args = {}
            for name, value in self.arguments.items():
                if isinstance(value, AsyncDaisiExecution):
                    value = Ref(await value.start())
                args[name] = value
            dialect = await self._session.ready()
            # Interrupted submissions are safe to repeat: the key makes the server
            # return the execution it created the first time.
            state = await dialect.submit(
                self._session.daisi_id,
                self.endpoint,
                args,
                self._key,
                order=self._order,
                linger=linger,
            )
            self._result_slot = dialect.result_slot(state.id)
        except BaseException as exc:
            self._submitting = False
            if self._starting is not None:
                self._starting.fail(exc)
                self._starting = None
            raise
        self._submitting = False
        self.id = state.id
        self._observe(state)
        if self._starting is not None:
            self._starting.set(state.id)
        if self._started is not None:
            self._started.fire()
        return state.id

    def _start_signal(self) -> Signal:
        if self._started is None:
            self._started = Signal()
        return self._started

    def _observe(self, state: RemoteState) -> None:
        if state.status.is_terminal or self._state is None:
            self._state = state
        if _rank(state.status) > _rank(self._last_status):
            self._last_status = state.status

    # -- result ----------------------------------------------------------------------------
    def __await__(self) -> Generator[Any, None, Any]:
        return self._result().__await__()  # ``result()`` with no timeout, a frame less

    async def result(self, timeout: float | None = None) -> Any:
        """Start if needed, wait until the end, and return the value.

        A failed execution raises :class:`DaisiExecutionError` (also an instance of the
        remote exception class when importable); waiting longer than ``timeout``
        seconds raises :class:`DaisiTimeoutError` and leaves the run going. Cancelling
        the awaiting task only stops the wait.

        ``timeout=None`` waits as long as it takes; ``timeout=0`` does not wait for the
        run: it starts it if needed, then returns the value if the run has ended, else
        raises :class:`DaisiTimeoutError` at once. A negative or NaN ``timeout`` raises
        ``ValueError`` (and a non-number ``TypeError``) before anything is sent.

        Example:
            >>> await d.compute(5, 6).result(timeout=30)
            11
        """
        seconds = check_timeout(timeout)
        if self._value is not _UNSET:
            return self._value
        if seconds is None:
            return await self._result()
        if seconds == 0:
            await self.start()
            if not (await self.status()).is_terminal:
                raise self._late(seconds)
            return await self._result()
        with anyio.move_on_after(seconds) as scope:
            await self.start()  # acknowledged at once: a late end names its execution
            return await self._result()
        if scope.cancelled_caught:
            raise self._late(seconds)
        return self._value  # pragma: no cover - unreachable

    def _late(self, seconds: float) -> DaisiTimeoutError:
        if self.id is None:
            return DaisiTimeoutError(
                f"the call of {self.endpoint!r} was not submitted within {seconds:g} s"
            )
        waited = "has not finished" if seconds == 0 else f"did not finish within {seconds:g} s"
        return DaisiTimeoutError(f"execution {self.id} {waited} (it keeps running)")

    async def _result(self) -> Any:
        if self._value is not _UNSET:
            return self._value
        state = await self._final_state()
        state.raise_for_failure()
        if self._value is _UNSET:
            dialect = await self._session.ready()
            self._value = await dialect.value(state)
        return self._value

    async def wait(self) -> ExecutionStatus:
        """Start if needed and wait until the execution ends; returns its final status
        (a failure is not raised here: ``await ex`` raises it).

        Example:
            >>> await d.compute(1, 2).wait()
            <ExecutionStatus.FINISHED: 'FINISHED'>
        """
        return (await self._final_state()).status

    async def _final_state(self) -> RemoteState:
        await self._start(linger=True)
        if self._state is not None and self._state.status.is_terminal:
            return self._state
        assert self.id is not None
        if self._result_slot is not None and self._result_slot.done:
            state = self._result_slot.value()
        else:
            dialect = await self._session.ready()
            state = await dialect.wait(self._session.daisi_id, self.id)
        self._observe(state)
        return state

    # -- status, logs, cancel --------------------------------------------------------------
    def status(self) -> _StatusView:
        """The status: ``await ex.status()`` now, ``async for s in ex.status()`` each change.

        Example:
            >>> ex = await d.compute_(1, 2)
            >>> async for s in ex.status():
            ...     last = s   # QUEUED, RUNNING, FINISHED (those it sees)
            >>> last
            <ExecutionStatus.FINISHED: 'FINISHED'>
        """
        return _StatusView(self)

    def logs(self) -> _LogsView:
        """The log lines: ``await ex.logs()`` so far, ``async for line in ex.logs()`` live.

        The live form starts from the first line, has no gaps or duplicates (it resumes
        after a dropped connection) and ends after the last line of a finished run.

        Example:
            >>> ex = await d.compute_(1, 2)
            >>> [line async for line in ex.logs()]  # Add Two Numbers prints nothing
            []
        """
        return _LogsView(self)

    async def cancel(self) -> ExecutionStatus:
        """Stop the remote run (a no-op once it has ended); returns the final status.

        Example:
            >>> await d.compute(1, 2).cancel()  # never started: never sent
            <ExecutionStatus.CANCELLED: 'CANCELLED'>
        """
        if self.id is None:
            if self._starting is None:
                self._last_status = ExecutionStatus.CANCELLED
                self._state = RemoteState(
                    id="",
                    status=ExecutionStatus.CANCELLED,
                    error={"message": "cancelled before start"},
                )
                return self._last_status
            await self._starting.wait()
        assert self.id is not None
        dialect = await self._session.ready()
        state = await dialect.cancel(self._session.daisi_id, self.id)
        self._observe(state)
        return state.status

    async def _current_status(self) -> ExecutionStatus:
        if self.id is None or self._last_status.is_terminal:
            return self._last_status
        if self._result_slot is not None and self._result_slot.done:
            self._observe(self._result_slot.value())
            return self._last_status
        dialect = await self._session.ready()
        self._observe(await dialect.fetch(self._session.daisi_id, self.id))
        return self._last_status

    async def _status_changes(self) -> AsyncIterator[ExecutionStatus]:
        last = await self._current_status()
        yield last
        if last.is_terminal:
            return
        while self.id is None:
            await self._start_signal().wait()
        dialect = await self._session.ready()
        async for status in dialect.status_stream(self._session.daisi_id, self.id, last):
            if _rank(status) > _rank(last):
                last = status
                self._last_status = max(self._last_status, status, key=_rank)
                yield status

    async def _log_lines(self) -> AsyncIterator[str]:
        while self.id is None:
            await self._start_signal().wait()
        dialect = await self._session.ready()
        async for line in dialect.log_stream(self._session.daisi_id, self.id):
            yield line

    async def _all_logs(self) -> list[str]:
        if self.id is None:
            return []
        dialect = await self._session.ready()
        return await dialect.logs(self._session.daisi_id, self.id)


_ORDER = {
    ExecutionStatus.NOT_STARTED: 0,
    ExecutionStatus.QUEUED: 1,
    ExecutionStatus.RUNNING: 2,
    ExecutionStatus.FINISHED: 3,
    ExecutionStatus.FAILED: 3,
    ExecutionStatus.CANCELLED: 3,
}


def _rank(status: ExecutionStatus) -> int:
    return _ORDER[status]


class _StatusView:
    """Awaitable (current status) and async-iterable (each transition until terminal)."""

    def __init__(self, ex: AsyncDaisiExecution) -> None:
        self._ex = ex

    def __await__(self) -> Generator[Any, None, ExecutionStatus]:
        return self._ex._current_status().__await__()

    def __aiter__(self) -> AsyncIterator[ExecutionStatus]:
        return self._ex._status_changes()


class _LogsView:
    """Awaitable (lines so far) and async-iterable (live lines)."""

    def __init__(self, ex: AsyncDaisiExecution) -> None:
        self._ex = ex

    def __await__(self) -> Generator[Any, None, list[str]]:
        return self._ex._all_logs().__await__()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._ex._log_lines()
