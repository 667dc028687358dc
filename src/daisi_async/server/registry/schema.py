"""The endpoint schemas the wire protocol shows: :class:`Endpoint` and :class:`Param`.

Example:
    >>> p = Param(name="x", kind="POSITIONAL_OR_KEYWORD", required=True, default=None,
    ...           default_repr=None, annotation="int", description="The x.")
    >>> Endpoint(name="f", params=(p,), doc=None, returns=None, is_async=False).to_json()["name"]
    'f'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ArgumentsError", "Endpoint", "Param"]


@dataclass(frozen=True)
class Param:
    """One parameter of an endpoint, as the wire protocol describes it."""

    name: str
    kind: str
    """The ``inspect.Parameter`` kind name, e.g. ``"POSITIONAL_OR_KEYWORD"``."""
    required: bool
    """False when the parameter has a default, and for ``*args`` / ``**kwargs``."""
    default: Any = field(hash=False)
    """The default as a strict JSON value when it is a literal one, else None."""
    default_repr: str | None
    """The default's Python source text, None when there is no default."""
    annotation: str | None
    description: str | None
    """The parameter's description from the function's docstring, if found."""

    def to_json(self) -> dict[str, Any]:
        """The protocol's *Param* object."""
        return {
            "id": self.name,
            "kind": self.kind,
            "required": self.required,
            "default": self.default,
            "default_repr": self.default_repr,
            "annotation": self.annotation,
            "description": self.description,
        }


class ArgumentsError(ValueError):
    """Arguments that do not bind to an endpoint's signature; ``param`` names the culprit."""

    def __init__(self, message: str, param: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True)
class Endpoint:
    """A function defined at the top level of a Daisi's entry module."""

    name: str
    params: tuple[Param, ...]
    doc: str | None
    returns: str | None
    is_async: bool

    @property
    def accepts_any_keyword(self) -> bool:
        """True when the function takes ``**kwargs``."""
        return any(p.kind == "VAR_KEYWORD" for p in self.params)

    def to_json(self) -> dict[str, Any]:
        """The protocol's *Endpoint* object."""
        return {
            "name": self.name,
            "doc": self.doc,
            "returns": self.returns,
            "schema": [p.to_json() for p in self.params],
        }

    def check_arguments(self, names: Iterable[str]) -> None:
        """Check that arguments with these names bind to the signature.

        All arguments travel by name, positional-only ones included; a ``*args``
        parameter may be given by name (its value must then be a list).

        Raises:
            ArgumentsError: an argument is not a parameter (and there is no
                ``**kwargs``), or a required parameter is missing.
        """
        given = list(names)
        named = {p.name for p in self.params if p.kind != "VAR_KEYWORD"}
        if not self.accepts_any_keyword:
            for name in given:
                if name not in named:
                    raise ArgumentsError(f"unexpected argument {name!r}", name)
        present = set(given)
        for param in self.params:
            if param.required and param.name not in present:
                raise ArgumentsError(f"missing required argument {param.name!r}", param.name)
