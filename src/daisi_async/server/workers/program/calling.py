"""Opening an execution's arguments and calling the endpoint with them.

Example:
    >>> def f(a, /, b, *rest, c=0, **kw): ...
    >>> bind_arguments(f, {"a": 1, "b": 2, "rest": [3], "z": 4})
    ([1, 2, 3], {'z': 4})
"""

from __future__ import annotations

import functools
import inspect
import platform
import types
from collections.abc import Callable, Mapping
from typing import Any

import dill

from .failures import error, format_exception, safe_str

__all__ = ["ArgumentFailure", "bind_arguments", "call", "open_arguments"]


class ArgumentFailure(Exception):
    """An argument could not be opened; ``error`` is the ``daisi.ArgumentError`` to report."""

    def __init__(self, error: dict[str, str]) -> None:
        super().__init__(error["message"])
        self.error = error


def _open_argument(spec: Any, body: bytes) -> Any:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ValueError(f"malformed argument descriptor {spec!r}")
    if "json" in spec:
        return spec["json"]
    if "file" in spec:
        with open(spec["file"], "rb") as f:  # large bytes are read into their objects
            return dill.Unpickler(f).load()
    if "body" in spec:
        offset, length = spec["body"]
        if not (offset >= 0 and length >= 0 and offset + length <= len(body)):
            raise ValueError("argument bytes lie outside the frame body")
        return dill.loads(memoryview(body)[offset : offset + length])
    raise ValueError(f"malformed argument descriptor {spec!r}")


def open_arguments(args: Mapping[str, Any], body: bytes) -> dict[str, Any]:
    """The argument values of a ``run`` frame (``{"json"}``, ``{"file"}`` or ``{"body"}``)."""
    values: dict[str, Any] = {}
    for name, spec in args.items():
        try:
            values[name] = _open_argument(spec, body)
        except BaseException as exc:
            why = f"{type(exc).__name__}: {safe_str(exc)}"
            message = (
                f"could not unpickle argument {name!r}: {why} (this worker runs "
                f"Python {platform.python_version()} with dill {dill.__version__})"
            )
            raise ArgumentFailure(
                error("daisi.ArgumentError", message, format_exception(exc, strip=False))
            ) from None
    return values


@functools.lru_cache(maxsize=1024)
def _parameters(fn: Callable[..., Any]) -> tuple[inspect.Parameter, ...]:
    return tuple(inspect.signature(fn).parameters.values())


def bind_arguments(
    fn: Callable[..., Any], values: Mapping[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """Turn named argument values into ``(args, kwargs)`` for ``fn``.

    Positional-only parameters are passed positionally; the value of a ``*args``
    parameter (a sequence) is expanded, and then the parameters before it are
    passed positionally too; the value of a ``**kwargs`` parameter (a mapping) is
    merged; other names are passed as keywords (Python reports the unknown ones).
    """
    try:
        params = _parameters(fn)
    except (TypeError, ValueError):
        return [], dict(values)
    var_pos = next((p for p in params if p.kind is p.VAR_POSITIONAL), None)
    var_kw = next((p for p in params if p.kind is p.VAR_KEYWORD), None)
    expand = var_pos is not None and var_pos.name in values
    remaining = dict(values)
    positional: list[Any] = []
    for p in params:
        if p.kind is p.POSITIONAL_ONLY or (expand and p.kind is p.POSITIONAL_OR_KEYWORD):
            if p.name in remaining:
                positional.append(remaining.pop(p.name))
            elif p.default is not p.empty:
                positional.append(p.default)
            else:
                raise TypeError(f"{fn.__name__}() missing required argument: {p.name!r}")
        elif p.kind is p.VAR_POSITIONAL:
            if p.name in remaining:
                extra = remaining.pop(p.name)
                if isinstance(extra, (str, bytes, Mapping)) or not hasattr(extra, "__iter__"):
                    raise TypeError(f"argument {p.name!r} (*{p.name}) must be a list")
                positional.extend(extra)
            break
    kwargs: dict[str, Any] = {}
    if var_kw is not None and var_kw.name in remaining:
        merged = remaining.pop(var_kw.name)
        if not isinstance(merged, Mapping):
            raise TypeError(f"argument {var_kw.name!r} (**{var_kw.name}) must be a dict")
        kwargs.update(merged)
    kwargs.update(remaining)
    return positional, kwargs


def call(module: types.ModuleType, endpoint: str, values: Mapping[str, Any]) -> Any:
    """Call the endpoint with ``values``; a coroutine is run to its end."""
    fn = getattr(module, endpoint, None)
    if endpoint.startswith("_") or not callable(fn):
        raise AttributeError(f"the Daisi has no endpoint {endpoint!r}")
    args, kwargs = bind_arguments(fn, values)
    result = fn(*args, **kwargs)
    if inspect.iscoroutine(result):
        import asyncio  # only async endpoints need it (it costs a worker ~6 MB)

        result = asyncio.run(result)
    return result
