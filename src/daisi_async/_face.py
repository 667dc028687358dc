"""What both faces of a Daisi share: its description and its endpoints as attributes.

``AsyncDaisi`` and ``Daisi`` both derive from :class:`DaisiFace`: one implementation of
``d.compute(...)`` (lazy) / ``d.compute_(...)`` (started), tab completion, ``help()``,
argument binding and the description fields. Each face says only where its
:class:`~._session.Session` is and what a call and a submission return.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Generic, TypeVar, overload

from ._endpoints import Endpoints
from ._session import Session

__all__ = ["DaisiFace", "Derived", "field"]

S = TypeVar("S")
T = TypeVar("T")


class Derived(Generic[S, T]):
    """A read-only attribute read from a part of its owner: ``read(part(owner))``.

    Example:
        >>> class Box:
        ...     size = Derived(lambda box: box.items, len, "How many items.")
        ...     def __init__(self) -> None:
        ...         self.items = [1, 2]
        >>> Box().size
        2
    """

    def __init__(self, part: Callable[[Any], S], read: Callable[[S], T], doc: str) -> None:
        self._part = part
        self._read = read
        self.__doc__ = doc

    @overload
    def __get__(self, obj: None, owner: type) -> Derived[S, T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...
    def __get__(self, obj: object, owner: type) -> Derived[S, T] | T:
        return self if obj is None else self._read(self._part(obj))


def _session_of(face: DaisiFace) -> Session:
    return face._face_session()


def field(read: Callable[[Session], T], doc: str) -> Derived[Session, T]:
    """A description attribute of a Daisi face, read from its session."""
    return Derived(_session_of, read, doc)


class DaisiFace:
    """A Daisi's description, and its endpoints as attributes (``d.ep(...)``,
    ``d.ep_(...)``) with tab completion and ``help()``.

    A face provides :meth:`_face_session`, ``call`` and ``submit`` (which may be a
    coroutine function).
    """

    info = field(lambda s: s.info, "What the server said (``DaisiNotConnectedError`` before).")
    id = field(lambda s: s.daisi_id, "The Daisi's id.")
    name = field(lambda s: s.name, "The Daisi's name (as asked for, before connecting).")
    description = field(lambda s: s.info.description, "The Daisi's description.")
    endpoints = field(lambda s: s.table("endpoints").names, "The endpoint names, in order.")
    protocol = field(lambda s: s.protocol, '``"v1"`` or ``"legacy"``: the dialect spoken.')

    _call_note: ClassVar[str] = "Returns a lazy execution."
    _functions: dict[str, tuple[Endpoints, Callable[..., Any]]]
    """Endpoint functions made so far, with the table they were made from."""

    def _face_session(self) -> Session:
        raise NotImplementedError

    def _endpoint_table(self, attribute: str) -> Endpoints:
        return self._face_session().table(attribute)

    def __repr__(self) -> str:
        table = self._face_session().endpoints
        return f"<{type(self).__name__} {self.name!r} id={table.info.id if table else None}>"

    def bind(self, endpoint: str, /, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Arguments by parameter name, as a local call would bind them.

        Raises the ``TypeError`` a local call would for wrong arguments, before
        anything is sent, and ``ValueError`` for a keyword name that is not valid
        Unicode (it can't travel).

        Example:
            >>> d.bind("compute", 5, secondNumber=6)
            {'firstNumber': 5, 'secondNumber': 6}
        """
        return self._endpoint_table(endpoint).bind(endpoint, args, kwargs)

    def call(self, endpoint: str, /, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def submit(self, endpoint: str, /, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def signature(self, endpoint: str) -> inspect.Signature:
        """The remote function's signature.

        Example:
            >>> d.signature("compute")
            <Signature (firstNumber: 'float', secondNumber: 'float')>
        """
        return self._endpoint_table(endpoint).signature(endpoint)

    def __dir__(self) -> Iterable[str]:
        names = set(super().__dir__())
        try:
            table = self._endpoint_table("__dir__")
        except AttributeError:
            return sorted(names)
        names.update(table.names)
        names.update(f"{n}_" for n in table.names)
        return sorted(names)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):  # endpoints never start with "_"; nor do lookups of tools
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        table = self._endpoint_table(name)  # not connected (or closed): says how to connect
        cached = self._functions.get(name)
        if cached is not None and cached[0] is table:
            return cached[1]
        fn: Callable[..., Any]
        if name in table.info.endpoints:
            fn = self._endpoint_function(table, name, submit=False)
        elif name.endswith("_") and name[:-1] in table.info.endpoints:
            fn = self._endpoint_function(table, name[:-1], submit=True)
        else:
            raise AttributeError(table.missing(name))
        self._functions[name] = (table, fn)
        return fn

    def _endpoint_function(
        self, table: Endpoints, endpoint: str, *, submit: bool
    ) -> Callable[..., Any]:
        fn: Callable[..., Any]
        if not submit:

            def call(*args: Any, **kwargs: Any) -> Any:
                return self.call(endpoint, *args, **kwargs)

            fn, note = call, self._call_note
        elif inspect.iscoroutinefunction(self.submit):

            async def submit_now(*args: Any, **kwargs: Any) -> Any:
                return await self.submit(endpoint, *args, **kwargs)

            fn, note = submit_now, "Submitted at once; returns the started execution."
        else:

            def submit_sync(*args: Any, **kwargs: Any) -> Any:
                return self.submit(endpoint, *args, **kwargs)

            fn, note = submit_sync, "Submitted at once; returns the started execution."
        fn.__name__ = endpoint + ("_" if submit else "")
        fn.__qualname__ = f"{table.info.name}.{fn.__name__}"
        doc = table.spec(endpoint).get("doc") or ""
        fn.__doc__ = f"{doc}\n\n{note}" if doc else note
        setattr(fn, "__signature__", table.signature(endpoint))  # noqa: B010 - for inspect
        return fn
