"""Value types of the ``daisi`` command's options (click parameter types).

Each one reads a command-line word and gives the value, or fails with the message that
click shows as ``Error: Invalid value for '--option': ...`` (exit code 2). None of them
needs the server extra: ``daisi --help`` and the client verbs work without it.

Example:
    >>> SIZE.convert("512MiB", None, None)
    536870912
    >>> POSITIVE_FLOAT.convert("2.5", None, None)
    2.5
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._values import parse_size as _parse_size

__all__ = [
    "COUNT",
    "ENV_NAME",
    "PLACE",
    "POSITIVE_FLOAT",
    "POSITIVE_INT",
    "SIZE",
    "URL",
    "parse_size",
]


def parse_size(text: str) -> int:
    """``"8GB"``, ``"512MiB"``, ``"1048576"`` -> bytes (binary units; the one size rule,
    :func:`daisi_async._values.parse_size`); ``click.BadParameter`` otherwise.

    Example:
        >>> parse_size("8GB") == 8 * 2**30
        True
    """
    try:
        return _parse_size(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


if TYPE_CHECKING:  # generic in recent click (a plain class at run time in older ones)
    _ParamType = click.ParamType[Any]
else:
    _ParamType = click.ParamType


class _Type(_ParamType):
    """A parameter type made of one function that raises ``ValueError`` with the message."""

    def parse(self, text: str) -> Any:
        raise NotImplementedError

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value  # a default already converted, or a value given in Python
        try:
            return self.parse(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class _Size(_Type):
    name = "size"

    def parse(self, text: str) -> int:
        return _parse_size(text)


class _AtLeast(_Type):
    name = "integer"

    def __init__(self, minimum: int) -> None:
        self.minimum = minimum

    def parse(self, text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise ValueError(f"not an integer: {text!r}") from None
        if n < self.minimum:
            raise ValueError(f"must be at least {self.minimum}")
        return n


class _PositiveFloat(_Type):
    name = "seconds"

    def parse(self, text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            raise ValueError(f"not a number: {text!r}") from None
        if not 0 < x < math.inf:
            raise ValueError("must be a positive number of seconds")
        return x


class _Url(_Type):
    name = "url"

    def parse(self, text: str) -> str:
        if not re.match(r"^(https?|file)://\S+$", text):
            raise ValueError(f"not an http(s) or file URL: {text!r}")
        return text


class _Place(_Type):
    """A ``--find-links`` value: a URL as it is, a path made absolute (uv runs in each
    Daisi's folder)."""

    name = "path_or_url"

    def parse(self, text: str) -> str:
        if "://" in text:
            return _Url().parse(text)
        path = Path(text).expanduser()
        if not path.exists():
            raise ValueError(f"no such file or folder: {text!r}")
        return str(path.resolve())


class _EnvName(_Type):
    name = "name"

    def parse(self, text: str) -> str:
        # The workers' rule (a light module: os and re only).
        from ..server.workers.environment import is_variable_name

        if not is_variable_name(text):
            raise ValueError(f"not an environment variable name: {text!r}")
        return text


SIZE = _Size()
"""A size in bytes: ``8GB``, ``512MiB``, ``1048576`` (binary units)."""
COUNT = _AtLeast(0)
"""A whole number, 0 or more."""
POSITIVE_INT = _AtLeast(1)
"""A whole number, 1 or more."""
POSITIVE_FLOAT = _PositiveFloat()
"""A finite number of seconds above 0."""
URL = _Url()
"""An http(s) or file URL."""
PLACE = _Place()
"""A folder or file (made absolute; it must exist) or a URL."""
ENV_NAME = _EnvName()
"""An environment variable name."""
