"""``Daisi``, ``DaisiExecution``, ``DaisiMapExecution``: the blocking face, with pydaisi's
semantics, derived from the async core.

Every method is one call into the core (:mod:`._daisi`, :mod:`._execution`,
:mod:`._map`) run on the shared background loop of :mod:`._portal`; iterators go
through its one bridge (:func:`._portal.iterate`). Endpoint attributes come from the
same namespace as the async face's (:class:`._endpoints.EndpointAttributes`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from . import _portal
from ._closing import Closing
from ._config import RetryPolicy, Settings, check_text, check_timeout
from ._daisi import AsyncDaisi, execution_filters
from ._execution import AsyncDaisiExecution
from ._face import DaisiFace, Derived
from ._map import MapRun, gather
from ._portal import SyncIterator
from ._progress import Tally
from ._public import public
from ._session import Session
from ._wire import ExecutionStatus

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Daisi", "DaisiExecution", "DaisiMapExecution", "SyncWorkers"]

T = TypeVar("T")


def _unwrap(value: Any) -> Any:
    return value._async if isinstance(value, DaisiExecution) else value


def _async_of(de: DaisiExecution) -> AsyncDaisiExecution:
    return de._async


def _mirror(read: Callable[[AsyncDaisiExecution], T], doc: str) -> Derived[Any, T]:
    """An attribute of a ``DaisiExecution``: that of its async execution."""
    return Derived(_async_of, read, doc)


@public
class DaisiExecution:
    """One call of a Daisi endpoint, for scripts and notebooks.

    ``.value`` starts the execution if needed and blocks until its result; ``.status``
    and ``.logs`` look at it without waiting. Ctrl-C during ``.value`` stops the wait,
    and also the remote run when ``.value`` itself started it.

    Example:
        >>> de = d.compute(firstNumber=5, secondNumber=6)
        >>> de.status
        <ExecutionStatus.NOT_STARTED: 'NOT_STARTED'>
        >>> de.value
        11
    """

    def __init__(self, daisi: Daisi, execution: AsyncDaisiExecution) -> None:
        self.daisi = daisi
        self._async = execution

    def __repr__(self) -> str:
        return f"<DaisiExecution {self.daisi.name}.{self.endpoint} id={self.id}>"

    @classmethod
    def from_id(cls, daisi: Daisi, execution_id: str) -> DaisiExecution:
        """Attach to an execution made elsewhere.

        Example:
            >>> eid = d.compute(1, 2).start()
            >>> DaisiExecution.from_id(d, eid).value
            3
        """
        return daisi.execution(execution_id)

    id = _mirror(lambda ex: ex.id, "The execution id (None until started).")
    endpoint = _mirror(lambda ex: ex.endpoint, "The endpoint's name.")
    arguments = _mirror(lambda ex: ex.arguments, "The arguments, by parameter name.")
    started = _mirror(lambda ex: ex.started, "Whether the execution was submitted.")
    last_status = _mirror(lambda ex: ex.last_status, "The last status seen (no request).")

    def start(self) -> str:
        """Submit the execution; returns its id (once; later calls return the same id).

        Example:
            >>> de = d.compute(1, 2)
            >>> de.start() == de.id
            True
        """
        return _portal.call(self._async.start)

    def result(self, timeout: float | None = None) -> Any:
        """Start if needed and block until the value (``DaisiTimeoutError`` after ``timeout``).

        ``timeout=None`` waits as long as it takes; ``timeout=0`` returns the value if the
        run has ended, else raises ``DaisiTimeoutError`` at once (starting it if needed);
        negative or NaN raises ``ValueError`` before anything is sent.

        Example:
            >>> d.compute(5, 6).result(timeout=30)
            11
        """
        check_timeout(timeout)
        started_here = not self._async.started
        return _portal.call(
            self._async.result,
            timeout,
            on_interrupt=self._async.cancel if started_here else None,
        )

    @property
    def value(self) -> Any:
        """The result: starts the execution if needed and blocks until it ends."""
        return self.result()

    def wait(self) -> ExecutionStatus:
        """Start if needed and block until the run ends; returns its final status."""
        started_here = not self._async.started
        return _portal.call(
            self._async.wait, on_interrupt=self._async.cancel if started_here else None
        )

    @property
    def status(self) -> ExecutionStatus:
        """The current status (``NOT_STARTED`` before ``start()``)."""
        status: ExecutionStatus = _portal.call(_awaited, self._async.status())
        return status

    @property
    def logs(self) -> list[str]:
        """The log lines printed so far."""
        return _portal.call(_awaited, self._async.logs())

    def stream_logs(self) -> SyncIterator[str]:
        """Each log line as it is printed, until the run ends.

        Example:
            >>> list(d.compute_(1, 2).stream_logs())
            []
        """
        return _portal.iterate(_aiter(self._async.logs()))

    def stream_status(self) -> SyncIterator[ExecutionStatus]:
        """The status now, then each change until a terminal one.

        Example:
            >>> [str(s) for s in d.compute_(1, 2).stream_status()][-1]
            'FINISHED'
        """
        return _portal.iterate(_aiter(self._async.status()))

    def cancel(self) -> ExecutionStatus:
        """Stop the remote run; returns the final status."""
        return _portal.call(self._async.cancel)


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _aiter(view: Any) -> AsyncIterator[Any]:
    items: AsyncIterator[Any] = view.__aiter__()
    return items


@public
class DaisiMapExecution(Closing):
    """Many calls of one endpoint, with a bound on those in flight.

    Iterating yields each value (in input order unless ``ordered=False``); leaving the
    loop early (``break``) cancels the executions still in flight.

    Example:
        >>> m = d.map("compute", [(i, 1) for i in range(5)])
        >>> m.value
        [1, 2, 3, 4, 5]
        >>> for total in d.map("compute", [(i, 1) for i in range(100)]):
        ...     break  # the other executions are cancelled
    """

    def __init__(self, daisi: Daisi, run: MapRun) -> None:
        self.daisi = daisi
        self._run = run
        self._values: list[Any] | None = None

    @property
    def value(self) -> list[Any]:
        """Every result, as a list; blocks until done."""
        if self._values is None:
            self._run._show_progress()  # the bar belongs to this thread (Jupyter's cell)
            try:
                self._values = _portal.call(_awaited, self._run)
            finally:
                self._run._hide_progress()
        return self._values

    def __iter__(self) -> SyncIterator[Any]:
        self._run._show_progress()
        return _portal.iterate(self._run.__aiter__())

    def close(self) -> None:
        """Stop: cancel the executions in flight and start no more (also at the end of a
        ``with`` block)."""
        _portal.call(self._run.aclose)

    @property
    def executions(self) -> list[DaisiExecution]:
        """The executions started so far."""
        return [DaisiExecution(self.daisi, ex) for ex in self._run.executions]


@public
class SyncWorkers:
    """The Daisi's worker pool, as pydaisi shows it.

    Example:
        >>> d.workers.set(1)
        'Setting the number of workers to 1'
        >>> d.workers.number
        1
    """

    def __init__(self, daisi: AsyncDaisi) -> None:
        self._workers = daisi.workers

    @property
    def number(self) -> int:
        """The current pool size."""
        return _portal.call(self._workers.number)

    @property
    def status(self) -> str:
        """``ready_to_update``, ``increasing`` or ``decreasing``."""
        return _portal.call(self._workers.status)

    def set(self, number: int) -> str:
        """Ask for ``number`` workers."""
        return _portal.call(self._workers.set, number)


@public
class Daisi(Closing, DaisiFace):
    """A Daisi for scripts and notebooks: endpoints are attributes returning executions.

    Connects when created (``name``, ``"owner/name"`` or a UUID). All ``Daisi`` objects
    share one background event loop and one connection pool. The settings are those of
    :class:`AsyncDaisi`, checked before anything starts (``ValueError`` / ``TypeError``).

    Example:
        >>> with Daisi("Add Two Numbers") as d:
        ...     de = d.compute(firstNumber=5, secondNumber=6)
        ...     print(de.value)
        11
    """

    _call_note = "Returns a lazy execution: ``.value`` for the result."

    def __init__(
        self, name_or_id: str, *, base_url: str | None = None, access_token: str | None = None,
        timeout: float | httpx.Timeout | None = None, retries: int | RetryPolicy | None = None,
    ) -> None:  # fmt: skip
        check_text(name_or_id, name="name_or_id")
        Settings.resolve(
            base_url=base_url, access_token=access_token, timeout=timeout, retries=retries
        )
        self._functions = {}
        self._closed = True
        _portal.acquire()
        try:
            self._async = _portal.call(
                _connect, name_or_id, base_url, access_token, timeout, retries
            )
        except BaseException:
            _portal.release()
            raise
        self._closed = False
        self.workers = SyncWorkers(self._async)

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Release this Daisi (the shared loop stops with the last one)."""
        if self._closed:
            return
        self._closed = True
        try:
            _portal.call(self._async.aclose)
        finally:
            _portal.release()

    def _face_session(self) -> Session:
        return self._async._face_session()

    # -- calling ---------------------------------------------------------------------------
    def call(self, endpoint: str, /, *args: Any, **kwargs: Any) -> DaisiExecution:
        """A lazy execution of ``endpoint`` (for names that clash with methods).

        Example:
            >>> d.call("compute", 5, 6).value
            11
        """
        args = tuple(_unwrap(a) for a in args)
        kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        return DaisiExecution(self, self._async.call(endpoint, *args, **kwargs))

    def submit(self, endpoint: str, /, *args: Any, **kwargs: Any) -> DaisiExecution:
        """Start an execution of ``endpoint`` now and return it.

        Example:
            >>> d.submit("compute", 5, 6).id is not None
            True
        """
        de = self.call(endpoint, *args, **kwargs)
        de.start()
        return de

    def execution(self, execution_id: str) -> DaisiExecution:
        """Attach to an execution of this Daisi made elsewhere, by its id.

        Example:
            >>> eid = d.compute(2, 2).start()
            >>> d.execution(eid).value
            4
        """
        return DaisiExecution(self, _portal.call(self._async.execution, execution_id))

    def map(
        self, func: str = "compute", args_list: Iterable[Any] | None = None, *,
        max_concurrency: int = 64, ordered: bool = True, return_exceptions: bool = False,
        progress: bool | Console = False,
    ) -> DaisiMapExecution:  # fmt: skip
        """Call ``func`` once per item (dict of keyword arguments, tuple, or one value).

        The names ``func`` and ``args_list`` are pydaisi's. ``progress=True`` draws a
        progress bar (done, failed, running, rate) while the values are awaited: on
        stderr, or in the notebook (needs ``pip install 'daisi-async[progress]'``).

        Example:
            >>> d.map("compute", [(i, 1) for i in range(3)]).value
            [1, 2, 3]
            >>> d.map(func="compute", args_list=[{"firstNumber": 1, "secondNumber": 1}]).value
            [2]
            >>> d.map("compute", [(i, 1) for i in range(100)], progress=True).value[-1]
            100
        """
        run = self._async.map(
            func,
            [_unwrap(a) for a in (args_list or [])],
            max_concurrency=max_concurrency,
            ordered=ordered,
            return_exceptions=return_exceptions,
            progress=progress,
        )
        return DaisiMapExecution(self, run)

    def as_completed(
        self, func: str = "compute", args_list: Iterable[Any] | None = None, *,
        max_concurrency: int = 64, return_exceptions: bool = False,
        progress: bool | Console = False,
    ) -> SyncIterator[Any]:  # fmt: skip
        """Like :meth:`map`, yielding results as they complete.

        Example:
            >>> sorted(d.as_completed("compute", [(1, 2), (3, 4)]))
            [3, 7]
        """
        run = self.map(
            func,
            args_list,
            max_concurrency=max_concurrency,
            ordered=False,
            return_exceptions=return_exceptions,
            progress=progress,
        )
        return iter(run)

    @staticmethod
    def run_parallel(*executions: DaisiExecution, progress: bool | Console = False) -> list[Any]:
        """Start every execution together and return their values, in order.

        ``progress=True`` draws a progress bar, as :meth:`map` does.

        Example:
            >>> Daisi.run_parallel(d.compute(1, 2), d.compute(3, 4))
            [3, 7]
        """
        tally = Tally.of(progress, total=len(executions), label="run_parallel")
        if tally is None:
            return _portal.call(gather, [de._async for de in executions], None)
        tally.start()  # from this thread: in Jupyter, the bar shows in this cell
        try:
            return _portal.call(gather, [de._async for de in executions], tally)
        finally:
            tally.stop()

    @staticmethod
    def get_daisies(
        base_url: str | None = None, access_token: str | None = None
    ) -> list[dict[str, Any]]:
        """The Daisies visible to the caller, by name (the same as :meth:`AsyncDaisi.list`).

        Example:
            >>> "Add Two Numbers" in [d["name"] for d in Daisi.get_daisies()]
            True
        """
        Settings.resolve(base_url=base_url, access_token=access_token)  # bad values: at once
        return _portal.call_briefly(_catalogue, base_url, access_token)

    @staticmethod
    def list_executions(
        *,
        daisi: str | None = None,
        status: str | Iterable[str] | None = None,
        limit: int = 50,
        before: str | None = None,
        base_url: str | None = None,
        access_token: str | None = None,
    ) -> list[dict[str, Any]]:
        """The caller's executions, newest first (see :meth:`AsyncDaisi.list_executions`).

        Example:
            >>> eid = d.compute(1, 2).start()
            >>> Daisi.list_executions(limit=1)[0]["id"] == eid
            True
        """
        execution_filters(daisi=daisi, status=status, limit=limit, before=before)  # at once
        Settings.resolve(base_url=base_url, access_token=access_token)

        async def listing() -> list[dict[str, Any]]:
            return await AsyncDaisi.list_executions(
                daisi=daisi,
                status=status,
                limit=limit,
                before=before,
                base_url=base_url,
                access_token=access_token,
                client=_portal.shared_client(),
            )

        return _portal.call_briefly(listing)


async def _connect(
    name_or_id: str,
    base_url: str | None,
    access_token: str | None,
    timeout: float | httpx.Timeout | None,
    retries: int | RetryPolicy | None,
) -> AsyncDaisi:
    client = _portal.shared_client() if timeout is None else None
    daisi = AsyncDaisi(
        name_or_id,
        base_url=base_url,
        access_token=access_token,
        client=client,
        timeout=timeout,
        retries=retries,
    )
    daisi._session.face = "Daisi"
    await daisi._session.open()
    return daisi


async def _catalogue(base_url: str | None, access_token: str | None) -> list[dict[str, Any]]:
    return await AsyncDaisi.list(
        base_url=base_url, access_token=access_token, client=_portal.shared_client()
    )
