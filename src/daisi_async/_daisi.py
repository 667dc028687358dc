"""``AsyncDaisi``: a connected Daisi whose endpoints are attributes (the async core)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import httpx
from anyio.abc import TaskGroup

from ._config import RetryPolicy, Settings, check_text
from ._execution import AsyncDaisiExecution
from ._face import DaisiFace
from ._failures import translate
from ._map import MapOptions, MapRun
from ._public import public
from ._session import Session, catalogue, server
from ._wire import ExecutionStatus

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["AsyncDaisi", "Workers"]


@public
class Workers:
    """The Daisi's worker pool (its size is adjustable at run time).

    Example:
        >>> await d.workers.set(1)
        'Setting the number of workers to 1'
        >>> await d.workers.number()
        1
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    async def number(self) -> int:
        """The current pool size."""
        dialect = await self._session.ready()
        return await dialect.workers_number(self._session.daisi_id)

    async def status(self) -> str:
        """``ready_to_update``, ``increasing`` or ``decreasing``."""
        dialect = await self._session.ready()
        return await dialect.workers_status(self._session.daisi_id)

    async def set(self, number: int) -> str:
        """Ask for ``number`` workers; returns the server's message.

        ``number`` must be an ``int`` (``TypeError``) and not negative (``ValueError``).
        """
        if not isinstance(number, int) or isinstance(number, bool):
            raise TypeError(f"number must be an int, not {type(number).__name__}")
        if number < 0:
            raise ValueError(f"number must be >= 0, not {number}")
        dialect = await self._session.ready()
        return await dialect.workers_set(self._session.daisi_id, number)


@public
class AsyncDaisi(DaisiFace):
    """A Daisi, connected: each endpoint is an attribute with the remote signature.

    ``name_or_id`` is a name, ``"owner/name"`` or a UUID. ``base_url`` defaults to
    ``$DAISI_BASE_URL``, else ``http://127.0.0.1:8421``; ``access_token`` to
    ``$DAISI_ACCESS_TOKEN``. An injected ``client`` is used as is and not closed.
    ``timeout`` bounds each HTTP request (seconds > 0, or an ``httpx.Timeout``; ``None``:
    30 s, 10 s to connect); ``retries`` is a count or a :class:`RetryPolicy`.

    Every setting is checked here: a bad ``base_url`` (or ``$DAISI_BASE_URL``), a
    negative or NaN ``timeout``, an empty name raise ``ValueError`` at once, the wrong
    type ``TypeError``. Afterwards only :class:`DaisiError` subclasses come out of a
    call, besides ``ValueError`` / ``TypeError`` for bad arguments.

    Example:
        >>> async with AsyncDaisi("Add Two Numbers") as d:
        ...     print(await d.compute(firstNumber=5, secondNumber=6))
        ...     ex = await d.compute_(5, 6)              # submitted now
        ...     totals = await asyncio.gather(*(d.compute(i, 1) for i in range(100)))
        11
        >>> totals[:3], await ex
        ([1, 2, 3], 11)
    """

    _call_note = "Returns a lazy execution: ``await`` it for the value."

    def __init__(
        self, name_or_id: str, *, base_url: str | None = None, access_token: str | None = None,
        client: httpx.AsyncClient | None = None, timeout: float | httpx.Timeout | None = None,
        retries: int | RetryPolicy | None = None,
    ) -> None:  # fmt: skip
        query = check_text(name_or_id, name="name_or_id")
        settings = Settings.resolve(
            base_url=base_url, access_token=access_token, timeout=timeout, retries=retries
        )
        self._session = Session(query, settings, client, face=type(self).__name__)
        self._task_group: TaskGroup | None = None
        self._functions = {}
        self.workers = Workers(self._session)

    # -- connection ------------------------------------------------------------------------
    @classmethod
    async def connect(cls, name_or_id: str, **kwargs: Any) -> AsyncDaisi:
        """Connect without a ``with`` block (call :meth:`aclose` when done).

        Example:
            >>> d = await AsyncDaisi.connect("Add Two Numbers")
            >>> await d.compute(1, 1)
            2
            >>> await d.aclose()
        """
        daisi = cls(name_or_id, **kwargs)
        await daisi._session.open()
        return daisi

    async def __aenter__(self) -> AsyncDaisi:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._task_group = tg
        try:
            await self._session.open(tg)
        except BaseException as exc:
            self._task_group = None
            tg.cancel_scope.cancel()
            await self._close_group(tg)
            raise exc
        return self

    async def _close_group(self, tg: TaskGroup) -> None:
        """Exit the task group; a background task's failure becomes its DaisiError."""
        try:
            await tg.__aexit__(None, None, None)
        except BaseException as exc:
            err = translate(exc, self._session.settings.base_url)
            if err is exc:
                raise
            raise err from err.__cause__

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tg, self._task_group = self._task_group, None
        try:
            if tg is not None:
                tg.cancel_scope.cancel()
                await self._close_group(tg)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop background work and close the HTTP client (unless it was injected)."""
        await self._session.aclose()

    def _face_session(self) -> Session:
        return self._session

    # -- calling ---------------------------------------------------------------------------
    def call(self, endpoint: str, /, *args: Any, **kwargs: Any) -> AsyncDaisiExecution:
        """A lazy execution of ``endpoint`` (for names that clash with methods).

        Example:
            >>> await d.call("compute", 5, 6)
            11
        """
        arguments = self.bind(endpoint, *args, **kwargs)
        return AsyncDaisiExecution(self._session, self, endpoint, arguments)

    async def submit(self, endpoint: str, /, *args: Any, **kwargs: Any) -> AsyncDaisiExecution:
        """Start an execution of ``endpoint`` now and return its handle.

        Example:
            >>> ex = await d.submit("compute", 5, 6)
            >>> ex.started, await ex
            (True, 11)
        """
        ex = self.call(endpoint, *args, **kwargs)
        await ex.start()
        return ex

    async def execution(self, execution_id: str) -> AsyncDaisiExecution:
        """Attach to an execution of this Daisi made elsewhere, by its id.

        Raises :class:`DaisiNotFoundError` for an unknown id, ``TypeError`` /
        ``ValueError`` for an id that is not a non-empty Unicode ``str``.

        Example:
            >>> eid = await d.compute(2, 2).start()
            >>> await (await d.execution(eid))
            4
        """
        check_text(execution_id, name="execution_id")
        return await AsyncDaisiExecution._attach(self._session, self, execution_id)

    def map(
        self, endpoint: str, items: Iterable[Any], *,
        max_concurrency: int = 64, ordered: bool = True, return_exceptions: bool = False,
        progress: bool | Console = False,
    ) -> MapRun:  # fmt: skip
        """Call ``endpoint`` once per item (a dict of keyword arguments, a tuple of
        positional ones, or one value) with at most ``max_concurrency`` in flight.

        ``progress=True`` draws a progress bar (done, failed, running, rate) on stderr,
        or in the notebook; a ``rich.console.Console`` draws it there. It needs rich
        (``pip install 'daisi-async[progress]'``; else ``ImportError`` at once).

        Example:
            >>> await d.map("compute", [(i, 1) for i in range(5)])
            [1, 2, 3, 4, 5]
            >>> totals = await d.map("compute", [(i, 1) for i in range(100)], progress=True)
            >>> totals[-1]
            100
        """
        options = MapOptions(max_concurrency, ordered, return_exceptions, progress)
        return MapRun(self.call, endpoint, items, options, label=f"{self.name}.{endpoint}")

    def as_completed(
        self, endpoint: str, items: Iterable[Any], *,
        max_concurrency: int = 64, return_exceptions: bool = False,
        progress: bool | Console = False,
    ) -> MapRun:  # fmt: skip
        """Like :meth:`map`, yielding results as they complete.

        Example:
            >>> sorted([v async for v in d.as_completed("compute", [(1, 2), (3, 4)])])
            [3, 7]
        """
        return self.map(
            endpoint,
            items,
            max_concurrency=max_concurrency,
            ordered=False,
            return_exceptions=return_exceptions,
            progress=progress,
        )

    # -- catalogue -------------------------------------------------------------------------
    @staticmethod
    async def list(
        *,
        base_url: str | None = None,
        access_token: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> list[dict[str, Any]]:
        """The Daisies visible to the caller: ``[{"id", "name", "owner", "description",
        ...}]``, sorted by name. A Daisi runtime also gives each one's ``endpoints``,
        ``state`` (``idle``, ``starting``, ``ready``, ``building``, ``broken``), why it is
        ``broken`` (else None), ``public`` and ``workers``.

        Raises ``ValueError`` for a bad ``base_url`` before anything is sent.

        Example:
            >>> "Add Two Numbers" in [info["name"] for info in await AsyncDaisi.list()]
            True
        """
        settings = Settings.resolve(base_url=base_url, access_token=access_token)
        return await catalogue(settings, client)

    @staticmethod
    async def list_executions(
        *,
        daisi: str | None = None,
        status: str | Iterable[str] | None = None,
        limit: int = 50,
        before: str | None = None,
        base_url: str | None = None,
        access_token: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """The caller's executions, newest first: ``[{"id", "daisi_id", "endpoint",
        "status", "created_at", "started_at", "finished_at", "error"}]``.

        ``daisi`` (a name, ``owner/name`` or id) and ``status`` (one status or several,
        any case) filter; ``limit`` caps the number (pages are fetched as needed);
        ``before`` (an execution id) lists only older ones. The caller's executions
        are those made with its token (or, without a token, the anonymous ones). Bad
        filters raise ``ValueError`` / ``TypeError`` before anything is sent; a server
        without the v1 routes raises :class:`DaisiError`.

        Example:
            >>> eid = await d.compute(1, 2).start()
            >>> [run["id"] for run in await AsyncDaisi.list_executions(limit=1)] == [eid]
            True
            >>> runs = await AsyncDaisi.list_executions(daisi="Add Two Numbers", status="queued")
        """
        filters = execution_filters(daisi=daisi, status=status, limit=limit, before=before)
        settings = Settings.resolve(base_url=base_url, access_token=access_token)
        async with server(settings, client) as dialect:
            return await dialect.executions(**filters)


def execution_filters(*, daisi: Any, status: Any, limit: Any, before: Any) -> dict[str, Any]:
    """The filters of :meth:`AsyncDaisi.list_executions`, checked (``ValueError`` /
    ``TypeError``) and in the dialect's terms."""
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise TypeError(f"limit must be an int, not {type(limit).__name__}")
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    words = [status] if isinstance(status, str) or status is None else list(status)
    statuses: list[str] = []
    for word in words:
        if word is None:
            continue
        if not isinstance(word, str):
            raise TypeError(f"status must be a str or a list of str, not {type(word).__name__}")
        try:
            found = ExecutionStatus(word.strip().upper())
        except ValueError:
            found = ExecutionStatus.NOT_STARTED
        if found is ExecutionStatus.NOT_STARTED:
            known = ", ".join(s.value for s in ExecutionStatus if s is not found)
            raise ValueError(f"status must be one of {known}, not {word!r}")
        statuses.append(found.value)
    return {
        "daisi": None if daisi is None else check_text(daisi, name="daisi"),
        "statuses": statuses,
        "limit": limit,
        "before": None if before is None else check_text(before, name="before"),
    }
