"""The endpoints of one connected Daisi: signatures, and one way to bind arguments.

:class:`Endpoints` gives each endpoint's signature, binds arguments so that a wrong
call fails exactly as a local call would (the same ``TypeError`` text), and explains a
missing endpoint (a near name, or why the Daisi is broken). :mod:`._face` turns them
into attributes of both faces.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._config import check_unicode
from ._dialects.base import DaisiInfo
from ._errors import DaisiNotFoundError, DaisiProtocolError, did_you_mean

__all__ = ["Endpoints", "signature_of"]

_KINDS = {kind.name: kind for kind in inspect._ParameterKind}
_VAR = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class _RemoteDefault:
    """A default value that lives on the server (shown by its source text, never sent)."""

    __slots__ = ("source",)

    def __init__(self, source: str) -> None:
        self.source = source

    def __repr__(self) -> str:
        return self.source


def signature_of(schema: Iterable[dict[str, Any]]) -> inspect.Signature:
    """An :class:`inspect.Signature` from an endpoint schema (in parameter order).

    Example:
        >>> signature_of([{"id": "a"}, {"id": "b", "default": 1, "required": False}])
        <Signature (a, b=1)>
    """
    params: list[inspect.Parameter] = []
    for p in schema:
        kind = _KINDS.get(str(p.get("kind")), inspect.Parameter.POSITIONAL_OR_KEYWORD)
        default: Any = inspect.Parameter.empty
        if kind not in _VAR:
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


class _Name:
    """Prints as a bare name (a default's placeholder in generated source)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


def _binder(endpoint: str, sig: inspect.Signature) -> Callable[..., dict[str, Any]]:
    """A local function with ``sig``'s parameters that returns what it was given.

    Calling it checks arguments *as Python does*: a wrong call raises the very
    ``TypeError`` a local call would (``compute() got an unexpected keyword argument
    'first'``). Parameter names are identifiers (``inspect.Parameter`` refuses others),
    so the generated source holds nothing from the server but names.
    """
    names = set(sig.parameters)
    grab = "_locals"
    while grab in names:
        grab += "_"
    namespace: dict[str, Any] = {grab: locals}
    params = []
    for i, p in enumerate(sig.parameters.values()):
        default: Any = inspect.Parameter.empty
        if p.default is not inspect.Parameter.empty:
            placeholder = f"_d{i}"
            while placeholder in names:
                placeholder += "_"
            namespace[placeholder] = _UNSENT
            default = _Name(placeholder)
        params.append(p.replace(annotation=inspect.Parameter.empty, default=default))
    text = str(inspect.Signature(params))
    exec(f"def _endpoint{text}:\n    return {grab}()\n", namespace)
    fn: Callable[..., dict[str, Any]] = namespace["_endpoint"]
    fn.__name__ = fn.__qualname__ = endpoint
    return fn


_UNSENT = object()
"""What an argument left to its (remote) default holds in a binder's locals."""


class Endpoints:
    """The endpoints of one connected Daisi.

    ``where`` is the server's base URL (for messages). Raises
    :class:`DaisiProtocolError` if a schema does not make a signature.
    """

    def __init__(self, info: DaisiInfo, where: str) -> None:
        self.info = info
        self.where = where
        self._signatures: dict[str, inspect.Signature] = {}
        self._binders: dict[str, Callable[..., dict[str, Any]]] = {}
        for name, spec in info.endpoints.items():
            try:
                sig = signature_of(spec.get("schema") or [])
                self._binders[name] = _binder(name, sig)
            except Exception as exc:
                raise DaisiProtocolError(
                    f"the server at {where} described endpoint {name!r} of {info.name!r} "
                    f"with a schema that is not a signature ({type(exc).__name__}: {exc})"
                ) from exc
            self._signatures[name] = sig

    @property
    def names(self) -> list[str]:
        """The endpoint names, in definition order."""
        return list(self.info.endpoints)

    def missing(self, endpoint: str) -> str:
        """Why ``endpoint`` is not there: the Daisi is broken, or a near name."""
        daisi = f"Daisi {self.info.name!r} at {self.where}"
        if self.info.broken:
            return f"{daisi} is broken, so it has no endpoint {endpoint!r}: {self.info.broken}"
        return f"{daisi} has no endpoint {endpoint!r}" + did_you_mean(endpoint, self.info.endpoints)

    def spec(self, endpoint: str) -> Mapping[str, Any]:
        """What the server said about ``endpoint`` (else :class:`DaisiNotFoundError`)."""
        try:
            return self.info.endpoints[endpoint]
        except KeyError:
            raise DaisiNotFoundError(self.missing(endpoint)) from None

    def signature(self, endpoint: str) -> inspect.Signature:
        """The remote function's signature."""
        self.spec(endpoint)
        return self._signatures[endpoint]

    def bind(self, endpoint: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Arguments by parameter name, as a local call would bind them.

        Wrong arguments raise the ``TypeError`` a local call raises; a keyword name that
        is not valid Unicode (it can't travel) raises ``ValueError``.
        """
        self.spec(endpoint)
        try:
            given = self._binders[endpoint](*args, **kwargs)
        except TypeError as exc:
            raise TypeError(str(exc)) from None
        out: dict[str, Any] = {}
        for name, param in self._signatures[endpoint].parameters.items():
            value = given[name]
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                if value:
                    out[name] = list(value)
            elif param.kind is inspect.Parameter.VAR_KEYWORD:
                for key in value:
                    check_unicode(key, name="keyword argument name")
                out.update(value)
            elif value is not _UNSENT:
                out[name] = value
        return out
