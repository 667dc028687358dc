"""``AsyncDaisiExecution``: a lazy, awaitable handle on one remote execution."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Generator, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ._config import check_text, check_timeout
from ._dispatch import Signal, Slot
from ._errors import DaisiTimeoutError
from ._protocol import Ref, RemoteState, new_key
from ._wire import ExecutionStatus

if TYPE_CHECKING:
    from ._daisi import AsyncDaisi

__all__ = ["AsyncDaisiExecution"]

_UNSET: Any = object()
_created = itertools.count()


class AsyncDaisiExecution:
    """One call of a Daisi endpoint: lazy until started, awaitable for its result.

    Example:
        >>> async with AsyncDaisi("Add Two Numbers") as d:  # doctest: +SKIP
        ...     ex = d.compute(firstNumber=5, secondNumber=6)   # not sent yet
        ...     await ex.start()                                 # the execution id
        ...     print(await ex.status())                         # ExecutionStatus.RUNNING
        ...     print(await ex)                                  # 11

    Passing a handle as an argument of another call sends a reference: the server
    resolves it when this execution ends, and its result never travels through here.
    """

    def __init__(self, daisi: AsyncDaisi, endpoint: str, arguments: Mapping[str, Any]) -> None:
        self.daisi = daisi
        self.endpoint = endpoint
        self.arguments = dict(arguments)
        self.id: str | None = None
        self._key = new_key()
        self._order = next(_created)
        self._state: RemoteState | None = None
        self._last_status = ExecutionStatus.NOT_STARTED
        self._starting: Slot[str] | None = None
        self._result_slot: Slot[RemoteState] | None = None
        self._value: Any = _UNSET
        self._started = Signal()

    def __repr__(self) -> str:
        return (
            f"<AsyncDaisiExecution {self.daisi.name}.{self.endpoint} "
            f"id={self.id} status={self._last_status.value}>"
        )

    # -- re-attach -------------------------------------------------------------------------
    @classmethod
    async def from_id(cls, daisi: AsyncDaisi, execution_id: str) -> AsyncDaisiExecution:
        """Attach to an execution made elsewhere (another process, yesterday).

        Raises :class:`DaisiNotFoundError` for an unknown id, ``TypeError`` for an id
        that is not a ``str`` and ``ValueError`` for an empty one or one that is not
        valid Unicode.

        Example:
            >>> ex = await AsyncDaisiExecution.from_id(d, "1b4e...")  # doctest: +SKIP
        """
        check_text(execution_id, name="execution_id")
        proto = await daisi._protocol()
        bind = getattr(proto, "bind", None)
        if bind is not None:
            bind(execution_id, daisi.id)
        state = await proto.fetch(execution_id)
        ex = cls(daisi, "", {})
        ex.id = execution_id
        ex._observe(state)
        return ex

    # -- starting --------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        """Whether the execution was submitted."""
        return self.id is not None

    async def start(self) -> str:
        """Submit the execution (once; later calls return the same id).

        Example:
            >>> eid = await d.compute(firstNumber=1, secondNumber=2).start()  # doctest: +SKIP
        """
        if self.id is not None:
            return self.id
        if self._starting is not None:
            return await self._starting.wait()
        slot: Slot[str] = Slot()
        self._starting = slot
        try:
            args = {}
            for name, value in self.arguments.items():
                if isinstance(value, AsyncDaisiExecution):
                    value = Ref(await value.start())
                args[name] = value
            proto = await self.daisi._protocol()
            # Interrupted submissions are safe to repeat: the key makes the server
            # return the execution it created the first time.
            state = await proto.submit(
                self.daisi.id, self.endpoint, args, self._key, order=self._order
            )
            slot_of = getattr(proto, "result_slot", None)
            if slot_of is not None:
                self._result_slot = slot_of(state.id)
        except BaseException as exc:
            self._starting = None
            slot.fail(exc)
            raise
        self.id = state.id
        self._observe(state)
        slot.set(state.id)
        self._started.fire()
        return state.id

    def _observe(self, state: RemoteState) -> None:
        if state.status.is_terminal or self._state is None:
            self._state = state
        if _rank(state.status) > _rank(self._last_status):
            self._last_status = state.status

    # -- result ----------------------------------------------------------------------------
    def __await__(self) -> Generator[Any, None, Any]:
        return self.result().__await__()

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
            >>> value = await d.compute(5, 6).result(timeout=30)  # doctest: +SKIP
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
        state = await self.wait()
        state.raise_for_failure()
        if self._value is _UNSET:
            proto = await self.daisi._protocol()
            self._value = await proto.value(state)
        return self._value

    async def wait(self) -> RemoteState:
        """Start if needed and wait until the execution ends; returns its final state."""
        await self.start()
        if self._state is not None and self._state.status.is_terminal:
            return self._state
        assert self.id is not None
        if self._result_slot is not None and self._result_slot.done:
            state = self._result_slot.value()
        else:
            proto = await self.daisi._protocol()
            state = await proto.wait(self.id)
        self._observe(state)
        return state

    # -- status, logs, cancel --------------------------------------------------------------
    def status(self) -> _StatusView:
        """The status: ``await ex.status()`` now, ``async for s in ex.status()`` each change.

        Example:
            >>> async for s in ex.status():  # doctest: +SKIP
            ...     print(s)   # QUEUED, RUNNING, FINISHED
        """
        return _StatusView(self)

    def logs(self) -> _LogsView:
        """The log lines: ``await ex.logs()`` so far, ``async for line in ex.logs()`` live.

        The live form starts from the first line, has no gaps or duplicates (it resumes
        after a dropped connection) and ends after the last line of a finished run.

        Example:
            >>> async for line in ex.logs():  # doctest: +SKIP
            ...     print(line)
        """
        return _LogsView(self)

    async def cancel(self) -> ExecutionStatus:
        """Stop the remote run (a no-op once it has ended); returns the final status.

        Example:
            >>> await ex.cancel()  # doctest: +SKIP
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
        proto = await self.daisi._protocol()
        state = await proto.cancel(self.id)
        self._observe(state)
        return state.status

    async def _current_status(self) -> ExecutionStatus:
        if self.id is None or self._last_status.is_terminal:
            return self._last_status
        if self._result_slot is not None and self._result_slot.done:
            self._observe(self._result_slot.value())
            return self._last_status
        proto = await self.daisi._protocol()
        self._observe(await proto.fetch(self.id))
        return self._last_status

    async def _status_changes(self) -> AsyncIterator[ExecutionStatus]:
        last = await self._current_status()
        yield last
        if last.is_terminal:
            return
        while self.id is None:
            await self._started.wait()
        proto = await self.daisi._protocol()
        async for status in proto.status_stream(self.id, last):
            if _rank(status) > _rank(last):
                last = status
                self._last_status = max(self._last_status, status, key=_rank)
                yield status

    async def _log_lines(self) -> AsyncIterator[str]:
        while self.id is None:
            await self._started.wait()
        proto = await self.daisi._protocol()
        async for line in proto.log_stream(self.id):
            yield line

    async def _all_logs(self) -> list[str]:
        if self.id is None:
            return []
        proto = await self.daisi._protocol()
        return await proto.logs(self.id)


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
