"""``AsyncDaisi``: a connected Daisi whose endpoints are attributes."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import anyio
import httpx
from anyio.abc import TaskGroup

from ._config import RetryPolicy, Settings, check_text, check_unicode
from ._errors import DaisiError, DaisiNotFoundError, DaisiProtocolError
from ._execution import AsyncDaisiExecution
from ._map import MapRun
from ._protocol import DaisiInfo, Protocol, negotiate
from ._transport import Transport, translate

__all__ = ["AsyncDaisi", "Workers"]

_KINDS = {kind.name: kind for kind in inspect._ParameterKind}


class _RemoteDefault:
    """A default value that lives on the server (shown by its source text, never sent)."""

    __slots__ = ("source",)

    def __init__(self, source: str) -> None:
        self.source = source

    def __repr__(self) -> str:
        return self.source


def signature_of(schema: Iterable[dict[str, Any]]) -> inspect.Signature:
    """An :class:`inspect.Signature` from an endpoint schema (in parameter order)."""
    params: list[inspect.Parameter] = []
    for p in schema:
        kind = _KINDS.get(str(p.get("kind")), inspect.Parameter.POSITIONAL_OR_KEYWORD)
        default: Any = inspect.Parameter.empty
        if kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            has_default = not p.get("required", "default" not in p and "default_repr" not in p)
            if has_default:
                source = p.get("default_repr")
                value = p.get("default")
                if value is not None or source in (None, "None"):
                    default = value
                else:
                    default = _RemoteDefault(str(source))
        annotation = p.get("annotation") or inspect.Parameter.empty
        params.append(inspect.Parameter(str(p["id"]), kind, default=default, annotation=annotation))
    try:
        return inspect.Signature(params)
    except ValueError:  # an unusual order: accept everything by keyword
        return inspect.Signature(
            [
                q.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                if q.kind is not inspect.Parameter.VAR_KEYWORD
                else q
                for q in params
                if q.kind is not inspect.Parameter.VAR_POSITIONAL
            ]
        )


def _check_schemas(info: DaisiInfo, where: str) -> None:
    """Every endpoint's schema makes a signature (else the server sent something wrong)."""
    for name, spec in info.endpoints.items():
        try:
            signature_of(spec.get("schema") or [])
        except Exception as exc:
            raise DaisiProtocolError(
                f"the server at {where} described endpoint {name!r} of {info.name!r} with a "
                f"schema that is not a signature ({type(exc).__name__}: {exc})"
            ) from exc


class Workers:
    """The Daisi's worker pool (its size is adjustable at run time).

    Example:
        >>> await d.workers.number()  # doctest: +SKIP
        1
        >>> await d.workers.set(3)  # doctest: +SKIP
    """

    def __init__(self, daisi: AsyncDaisi) -> None:
        self._daisi = daisi

    async def number(self) -> int:
        """The current pool size."""
        return await (await self._daisi._protocol()).workers_number(self._daisi.id)

    async def status(self) -> str:
        """``ready_to_update``, ``increasing`` or ``decreasing``."""
        return await (await self._daisi._protocol()).workers_status(self._daisi.id)

    async def set(self, number: int) -> str:
        """Ask for ``number`` workers; returns the server's message.

        ``number`` must be an ``int`` (``TypeError``) and not negative (``ValueError``).
        """
        if not isinstance(number, int) or isinstance(number, bool):
            raise TypeError(f"number must be an int, not {type(number).__name__}")
        if number < 0:
            raise ValueError(f"number must be >= 0, not {number}")
        return await (await self._daisi._protocol()).workers_set(self._daisi.id, number)


class AsyncDaisi:
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
        >>> async with AsyncDaisi("Add Two Numbers") as d:  # doctest: +SKIP
        ...     print(await d.compute(firstNumber=5, secondNumber=6))   # 11
        ...     ex = await d.compute_(5, 6)              # submitted now
        ...     totals = await asyncio.gather(*(d.compute(i, 1) for i in range(1000)))
    """

    def __init__(
        self,
        name_or_id: str,
        *,
        base_url: str | None = None,
        access_token: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float | httpx.Timeout | None = None,
        retries: int | RetryPolicy | None = None,
    ) -> None:
        self._query = check_text(name_or_id, name="name_or_id")
        self._settings = Settings.resolve(
            base_url=base_url, access_token=access_token, timeout=timeout, retries=retries
        )
        self._client = client
        self._transport: Transport | None = None
        self._proto: Protocol | None = None
        self._task_group: TaskGroup | None = None
        self._info: DaisiInfo | None = None
        self._functions: dict[str, Callable[..., Any]] = {}
        self.workers = Workers(self)

    # -- connection ------------------------------------------------------------------------
    @classmethod
    async def connect(cls, name_or_id: str, **kwargs: Any) -> AsyncDaisi:
        """Connect without a ``with`` block (call :meth:`aclose` when done).

        Example:
            >>> d = await AsyncDaisi.connect("Add Two Numbers")  # doctest: +SKIP
        """
        daisi = cls(name_or_id, **kwargs)
        await daisi._connect()
        return daisi

    async def _connect(self) -> None:
        if self._info is not None:
            return
        if self._transport is None:
            self._transport = Transport(self._settings, self._client)
        try:
            if self._proto is None:
                self._proto = await negotiate(self._transport)
            info = await self._proto.connect(self._query)
            _check_schemas(info, self._transport.api)
            self._info = info
        except DaisiNotFoundError:
            await self.aclose()
            raise DaisiNotFoundError(f"no Daisi named {self._query!r}", status_code=404) from None
        except BaseException:
            await self.aclose()
            raise
        if self._task_group is not None:
            spawner = getattr(self._proto, "spawner", None)
            if spawner is not None:
                spawner.task_group = self._task_group

    async def __aenter__(self) -> AsyncDaisi:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._task_group = tg
        try:
            await self._connect()
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
            err = translate(exc, self._settings.base_url)
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
        proto, self._proto = self._proto, None
        if proto is not None:
            await proto.aclose()
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.aclose()
        self._info = None

    async def _protocol(self) -> Protocol:
        if self._proto is None or self._info is None:
            await self._connect()
        assert self._proto is not None
        return self._proto

    # -- description -----------------------------------------------------------------------
    @property
    def info(self) -> DaisiInfo:
        """What the server said about this Daisi (raises if not connected)."""
        if self._info is None:
            raise DaisiError(
                "not connected: use 'async with AsyncDaisi(...)' or AsyncDaisi.connect()"
            )
        return self._info

    @property
    def id(self) -> str:
        """The Daisi's id."""
        return self.info.id

    @property
    def name(self) -> str:
        """The Daisi's name (as asked for, before connecting)."""
        return self._info.name if self._info else self._query

    @property
    def description(self) -> str:
        """The Daisi's description."""
        return self.info.description

    @property
    def endpoints(self) -> list[str]:
        """The endpoint names, in definition order."""
        return list(self.info.endpoints)

    @property
    def protocol(self) -> str:
        """``"v1"`` or ``"legacy"``: the dialect spoken with the server."""
        return self._proto.name if self._proto else ""

    def __repr__(self) -> str:
        return f"<AsyncDaisi {self.name!r} id={self._info.id if self._info else None}>"

    def __dir__(self) -> Iterable[str]:
        names = set(super().__dir__())
        if self._info is not None:
            names.update(self._info.endpoints)
            names.update(f"{n}_" for n in self._info.endpoints)
        return sorted(names)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("__") or self.__dict__.get("_info") is None:
            raise AttributeError(name)
        fn = self._functions.get(name)
        if fn is not None:
            return fn
        endpoints = self._info.endpoints if self._info else {}
        if name in endpoints:
            fn = self._endpoint_function(name, submit=False)
        elif name.endswith("_") and name[:-1] in endpoints:
            fn = self._endpoint_function(name[:-1], submit=True)
        else:
            raise AttributeError(f"Daisi {self.name!r} has no endpoint {name!r}")
        self._functions[name] = fn
        return fn

    def signature(self, endpoint: str) -> inspect.Signature:
        """The remote function's signature."""
        return signature_of(self._endpoint(endpoint).get("schema") or [])

    def _endpoint(self, endpoint: str) -> dict[str, Any]:
        try:
            return self.info.endpoints[endpoint]
        except KeyError:
            raise DaisiNotFoundError(f"Daisi {self.name!r} has no endpoint {endpoint!r}") from None

    def _endpoint_function(self, endpoint: str, *, submit: bool) -> Callable[..., Any]:
        spec = self._endpoint(endpoint)
        sig = self.signature(endpoint)
        fn: Callable[..., Any]
        if submit:

            async def submit_now(*args: Any, **kwargs: Any) -> AsyncDaisiExecution:
                return await self.submit(endpoint, *args, **kwargs)

            fn = submit_now
        else:

            def call(*args: Any, **kwargs: Any) -> AsyncDaisiExecution:
                return self.call(endpoint, *args, **kwargs)

            fn = call
        fn.__name__ = endpoint + ("_" if submit else "")
        fn.__qualname__ = f"{self.name}.{fn.__name__}"
        doc = spec.get("doc") or ""
        note = (
            "Submitted at once; returns the started execution."
            if submit
            else ("Returns a lazy execution: ``await`` it for the value.")
        )
        fn.__doc__ = f"{doc}\n\n{note}" if doc else note
        setattr(fn, "__signature__", sig)  # noqa: B010 - read by inspect.signature
        return fn

    # -- calling ---------------------------------------------------------------------------
    def bind(self, endpoint: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Map positional and keyword arguments to parameter names, as a local call would.

        Raises :class:`TypeError` for wrong arguments, before anything is sent, and
        ``ValueError`` for a keyword name that is not valid Unicode (it can't travel).
        """
        sig = self.signature(endpoint)
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{endpoint}(): {exc}") from None
        out: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            kind = sig.parameters[name].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                out[name] = list(value)
            elif kind is inspect.Parameter.VAR_KEYWORD:
                for key in value:
                    check_unicode(key, name="keyword argument name")
                out.update(value)
            else:
                out[name] = value
        return out

    def call(self, endpoint: str, /, *args: Any, **kwargs: Any) -> AsyncDaisiExecution:
        """A lazy execution of ``endpoint`` (for names that clash with methods).

        Example:
            >>> ex = d.call("compute", 5, 6)  # doctest: +SKIP
        """
        return AsyncDaisiExecution(self, endpoint, self.bind(endpoint, *args, **kwargs))

    async def submit(self, endpoint: str, /, *args: Any, **kwargs: Any) -> AsyncDaisiExecution:
        """Start an execution of ``endpoint`` now and return its handle.

        Example:
            >>> ex = await d.submit("compute", 5, 6)  # doctest: +SKIP
        """
        ex = self.call(endpoint, *args, **kwargs)
        await ex.start()
        return ex

    def map(
        self,
        endpoint: str,
        items: Iterable[Any],
        *,
        max_concurrency: int = 64,
        ordered: bool = True,
        return_exceptions: bool = False,
    ) -> MapRun:
        """Call ``endpoint`` once per item (a dict of keyword arguments, a tuple of
        positional ones, or one value) with at most ``max_concurrency`` in flight.

        Example:
            >>> totals = await d.map("compute", [(i, 1) for i in range(100)])  # doctest: +SKIP
        """
        return MapRun(
            self,
            endpoint,
            items,
            max_concurrency=max_concurrency,
            ordered=ordered,
            return_exceptions=return_exceptions,
        )

    def as_completed(
        self,
        endpoint: str,
        items: Iterable[Any],
        *,
        max_concurrency: int = 64,
        return_exceptions: bool = False,
    ) -> MapRun:
        """Like :meth:`map`, yielding results as they complete.

        Example:
            >>> async for value in d.as_completed("compute", [(1, 2), (3, 4)]):  # doctest: +SKIP
            ...     print(value)
        """
        return self.map(
            endpoint,
            items,
            max_concurrency=max_concurrency,
            ordered=False,
            return_exceptions=return_exceptions,
        )

    # -- catalogue -------------------------------------------------------------------------
    @staticmethod
    async def list(
        *,
        base_url: str | None = None,
        access_token: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> list[dict[str, Any]]:
        """The Daisies visible to the caller: ``[{"id", "name", "owner", "description"}]``.

        Example:
            >>> for info in await AsyncDaisi.list():  # doctest: +SKIP
            ...     print(info["name"])

        Raises ``ValueError`` for a bad ``base_url`` before anything is sent.
        """
        settings = Settings.resolve(base_url=base_url, access_token=access_token)
        transport = Transport(settings, client)
        try:
            proto = await negotiate(transport)
            return await proto.catalogue()
        finally:
            await transport.aclose()
