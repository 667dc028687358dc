"""``Daisi`` and ``DaisiExecution``: the blocking facade, with pydaisi's semantics.

Each method is a thin call into the async core (:mod:`._daisi`, :mod:`._execution`),
run on the one shared background event loop of :mod:`._portal`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

import anyio
import httpx

from . import _portal
from ._config import RetryPolicy, Settings, check_text, check_timeout
from ._daisi import AsyncDaisi
from ._execution import AsyncDaisiExecution
from ._map import MapRun
from ._wire import ExecutionStatus

__all__ = ["Daisi", "DaisiExecution", "DaisiMapExecution", "SyncWorkers"]


def _unwrap(value: Any) -> Any:
    return value._async if isinstance(value, DaisiExecution) else value


class DaisiExecution:
    """One call of a Daisi endpoint, for scripts and notebooks.

    ``.value`` starts the execution if needed and blocks until its result; ``.status``
    and ``.logs`` look at it without waiting. Ctrl-C during ``.value`` stops the wait,
    and also the remote run when ``.value`` itself started it.

    Example:
        >>> de = Daisi("Add Two Numbers").compute(firstNumber=5, secondNumber=6)  # doctest: +SKIP
        >>> de.status                     # doctest: +SKIP
        <ExecutionStatus.NOT_STARTED: 'NOT_STARTED'>
        >>> de.value                      # doctest: +SKIP
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
            >>> de = DaisiExecution.from_id(d, "1b4e...")  # doctest: +SKIP
        """
        ex = _portal.call(AsyncDaisiExecution.from_id, daisi._async, execution_id)
        return cls(daisi, ex)

    @property
    def id(self) -> str | None:
        """The execution id (None until started)."""
        return self._async.id

    @property
    def endpoint(self) -> str:
        """The endpoint's name."""
        return self._async.endpoint

    def start(self) -> str:
        """Submit the execution; returns its id.

        Example:
            >>> de.start()  # doctest: +SKIP
            '8c0a...'
        """
        return _portal.call(self._async.start)

    def result(self, timeout: float | None = None) -> Any:
        """Start if needed and block until the value (``DaisiTimeoutError`` after ``timeout``).

        ``timeout=None`` waits as long as it takes; ``timeout=0`` returns the value if the
        run has ended, else raises ``DaisiTimeoutError`` at once (starting it if needed);
        negative or NaN raises ``ValueError`` before anything is sent.

        Example:
            >>> de.result(timeout=30)  # doctest: +SKIP
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

    @property
    def status(self) -> ExecutionStatus:
        """The current status (``NOT_STARTED`` before ``start()``)."""
        return _portal.call(self._current_status)

    async def _current_status(self) -> ExecutionStatus:
        return await self._async.status()

    @property
    def logs(self) -> list[str]:
        """The log lines printed so far."""
        return _portal.call(self._all_logs)

    async def _all_logs(self) -> list[str]:
        return await self._async.logs()

    def stream_logs(self) -> Iterator[str]:
        """Each log line as it is printed, until the run ends.

        Example:
            >>> for line in de.stream_logs():  # doctest: +SKIP
            ...     print(line)
        """
        agen = self._async.logs().__aiter__()

        async def step() -> tuple[bool, str]:
            try:
                return True, await agen.__anext__()
            except StopAsyncIteration:
                return False, ""

        async def close() -> None:
            await agen.aclose()  # type: ignore[attr-defined]

        try:
            while True:
                more, line = _portal.call(step)
                if not more:
                    return
                yield line
        finally:
            _portal.call(close)

    def cancel(self) -> ExecutionStatus:
        """Stop the remote run; returns the final status."""
        return _portal.call(self._async.cancel)


class DaisiMapExecution:
    """Many calls of one endpoint, with a bound on those in flight.

    Example:
        >>> m = d.map("compute", [(i, 1) for i in range(10)])  # doctest: +SKIP
        >>> m.value  # doctest: +SKIP
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    """

    def __init__(self, daisi: Daisi, run: MapRun) -> None:
        self.daisi = daisi
        self._run = run
        self._values: list[Any] | None = None

    @property
    def value(self) -> list[Any]:
        """Every result (in input order unless ``ordered=False``); blocks until done."""
        if self._values is None:
            self._values = list(self)
        return self._values

    def __iter__(self) -> Iterator[Any]:
        agen = self._run.__aiter__()

        async def step() -> tuple[bool, Any]:
            try:
                return True, await agen.__anext__()
            except StopAsyncIteration:
                return False, None

        while True:
            more, value = _portal.call(step)
            if not more:
                return
            yield value

    @property
    def executions(self) -> list[DaisiExecution]:
        """The executions started so far."""
        return [DaisiExecution(self.daisi, ex) for ex in self._run.executions]


class SyncWorkers:
    """The Daisi's worker pool, as pydaisi shows it.

    Example:
        >>> d.workers.number      # doctest: +SKIP
        1
        >>> d.workers.set(3)      # doctest: +SKIP
        'Setting the number of workers to 3'
    """

    def __init__(self, daisi: Daisi) -> None:
        self._daisi = daisi

    @property
    def number(self) -> int:
        """The current pool size."""
        return _portal.call(self._daisi._async.workers.number)

    @property
    def status(self) -> str:
        """``ready_to_update``, ``increasing`` or ``decreasing``."""
        return _portal.call(self._daisi._async.workers.status)

    def set(self, number: int) -> str:
        """Ask for ``number`` workers."""
        return _portal.call(self._daisi._async.workers.set, number)


class Daisi:
    """A Daisi for scripts and notebooks: endpoints are attributes returning executions.

    Connects when created (``name``, ``"owner/name"`` or a UUID). All ``Daisi`` objects
    share one background event loop and one connection pool. The settings are those of
    :class:`AsyncDaisi`, checked before anything starts (``ValueError`` / ``TypeError``).

    Example:
        >>> with Daisi("Add Two Numbers") as d:  # doctest: +SKIP
        ...     de = d.compute(firstNumber=5, secondNumber=6)
        ...     print(de.value)
        11
    """

    def __init__(
        self,
        name_or_id: str,
        *,
        base_url: str | None = None,
        access_token: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        retries: int | RetryPolicy | None = None,
    ) -> None:
        check_text(name_or_id, name="name_or_id")
        Settings.resolve(
            base_url=base_url, access_token=access_token, timeout=timeout, retries=retries
        )
        _portal.acquire()
        self._closed = False
        try:
            self._async = _portal.call(
                _connect, name_or_id, base_url, access_token, timeout, retries
            )
        except BaseException:
            self._closed = True
            _portal.release()
            raise
        self._functions: dict[str, Callable[..., Any]] = {}
        self.workers = SyncWorkers(self)

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

    def __enter__(self) -> Daisi:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- description -----------------------------------------------------------------------
    @property
    def id(self) -> str:
        """The Daisi's id."""
        return self._async.id

    @property
    def name(self) -> str:
        """The Daisi's name."""
        return self._async.name

    @property
    def description(self) -> str:
        """The Daisi's description."""
        return self._async.description

    @property
    def endpoints(self) -> list[str]:
        """The endpoint names."""
        return self._async.endpoints

    def __repr__(self) -> str:
        return f"<Daisi {self.name!r} id={self.id}>"

    def __dir__(self) -> Iterable[str]:
        names = set(super().__dir__())
        names.update(self.endpoints)
        names.update(f"{n}_" for n in self.endpoints)
        return sorted(names)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("__") or "_async" not in self.__dict__:
            raise AttributeError(name)
        fn = self._functions.get(name)
        if fn is not None:
            return fn
        eps = self._async.endpoints
        if name in eps:
            fn = self._endpoint_function(name, submit=False)
        elif name.endswith("_") and name[:-1] in eps:
            fn = self._endpoint_function(name[:-1], submit=True)
        else:
            raise AttributeError(f"Daisi {self.name!r} has no endpoint {name!r}")
        self._functions[name] = fn
        return fn

    def _endpoint_function(self, endpoint: str, *, submit: bool) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> DaisiExecution:
            return self.call(endpoint, *args, **kwargs)

        def submit_now(*args: Any, **kwargs: Any) -> DaisiExecution:
            return self.submit(endpoint, *args, **kwargs)

        fn = submit_now if submit else call
        fn.__name__ = endpoint + ("_" if submit else "")
        fn.__qualname__ = f"{self.name}.{fn.__name__}"
        doc = self._async.info.endpoints[endpoint].get("doc") or ""
        note = (
            "Submitted at once; returns the started execution."
            if submit
            else "Returns a lazy execution: ``.value`` for the result."
        )
        fn.__doc__ = f"{doc}\n\n{note}" if doc else note
        setattr(fn, "__signature__", self._async.signature(endpoint))  # noqa: B010
        return fn

    # -- calling ---------------------------------------------------------------------------
    def call(self, endpoint: str, /, *args: Any, **kwargs: Any) -> DaisiExecution:
        """A lazy execution of ``endpoint`` (for names that clash with methods).

        Example:
            >>> d.call("compute", 5, 6).value  # doctest: +SKIP
            11
        """
        args = tuple(_unwrap(a) for a in args)
        kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        return DaisiExecution(self, self._async.call(endpoint, *args, **kwargs))

    def submit(self, endpoint: str, /, *args: Any, **kwargs: Any) -> DaisiExecution:
        """Start an execution of ``endpoint`` now and return it.

        Example:
            >>> de = d.submit("compute", 5, 6)  # doctest: +SKIP
        """
        de = self.call(endpoint, *args, **kwargs)
        de.start()
        return de

    def map(
        self,
        func: str = "compute",
        args_list: Iterable[Any] | None = None,
        *,
        max_concurrency: int = 64,
        ordered: bool = True,
        return_exceptions: bool = False,
    ) -> DaisiMapExecution:
        """Call ``func`` once per item (dict of keyword arguments, tuple, or one value).

        Example:
            >>> d.map("compute", [(i, 1) for i in range(3)]).value  # doctest: +SKIP
            [1, 2, 3]
        """
        run = self._async.map(
            func,
            [_unwrap(a) for a in (args_list or [])],
            max_concurrency=max_concurrency,
            ordered=ordered,
            return_exceptions=return_exceptions,
        )
        return DaisiMapExecution(self, run)

    @staticmethod
    def run_parallel(*executions: DaisiExecution) -> list[Any]:
        """Start every execution together and return their values, in order.

        Example:
            >>> Daisi.run_parallel(d.compute(1, 2), d.compute(3, 4))  # doctest: +SKIP
            [3, 7]
        """
        return _portal.call(_gather, [de._async for de in executions])

    @staticmethod
    def get_daisies(
        base_url: str | None = None, access_token: str | None = None
    ) -> list[dict[str, Any]]:
        """The Daisies visible to the caller: ``[{"id", "name", "description"}]``, by name.

        Example:
            >>> [d["name"] for d in Daisi.get_daisies()]  # doctest: +SKIP
        """
        Settings.resolve(base_url=base_url, access_token=access_token)  # bad values: at once
        _portal.acquire()
        try:
            found = _portal.call(_catalogue, base_url, access_token)
        finally:
            _portal.release()
        return [
            {"id": d["id"], "name": d["name"], "description": d.get("description", "")}
            for d in found
        ]


async def _connect(
    name_or_id: str,
    base_url: str | None,
    access_token: str | None,
    timeout: float | httpx.Timeout | None,
    retries: int | RetryPolicy | None,
) -> AsyncDaisi:
    client = _portal.shared_client() if timeout is None else None
    return await AsyncDaisi.connect(
        name_or_id,
        base_url=base_url,
        access_token=access_token,
        client=client,
        timeout=timeout,
        retries=retries,
    )


async def _catalogue(base_url: str | None, access_token: str | None) -> list[dict[str, Any]]:
    return await AsyncDaisi.list(
        base_url=base_url, access_token=access_token, client=_portal.shared_client()
    )


async def _gather(executions: list[AsyncDaisiExecution]) -> list[Any]:
    """Every value, in order, or the first failure in argument order (as reading each
    ``.value`` in turn would raise): a failure stops the waits for the later ones."""
    results: list[Any] = [None] * len(executions)
    errors: dict[int, Exception] = {}
    scopes = [anyio.CancelScope() for _ in executions]

    async def one(i: int, ex: AsyncDaisiExecution) -> None:
        with scopes[i]:
            try:
                results[i] = await ex
            except Exception as exc:
                errors[i] = exc
                for later in scopes[i + 1 :]:
                    later.cancel()

    async with anyio.create_task_group() as tg:
        for i, ex in enumerate(executions):
            tg.start_soon(one, i, ex)
    if errors:
        raise errors[min(errors)]
    return results
