"""Rules about values that the client and the runtime share: strict JSON, and sizes.

Standard library only: the runtime (its registry, its worker processes) imports this
module too, and a worker must start without loading the HTTP client stack.

*Strict JSON* is what travels inline as JSON and comes back unchanged: dicts with
``str`` keys, lists, ``str`` (valid Unicode: no lone surrogate, which UTF-8 JSON text
can't carry), ``int``, finite ``float``, ``bool`` and ``None``, of those exact types
(subclasses such as ``IntEnum`` members or numpy scalars are not), nested at most
:data:`MAX_JSON_DEPTH` deep. Everything else travels as dill.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable
from typing import Any

__all__ = [
    "MAX_JSON_DEPTH",
    "PLAIN_DATA_NODES",
    "classify",
    "is_strict_json",
    "is_unicode",
    "is_uuid",
    "parse_size",
]

MAX_JSON_DEPTH = 64
"""Deeper containers are not strict JSON (a JSON parser may refuse deep nesting)."""

PLAIN_DATA_NODES = 1_000_000
"""Plain data with more values than this is not classified as plain (see :func:`classify`)."""


def is_unicode(text: str) -> bool:
    """Whether ``text`` has no lone surrogate, i.e. can be encoded as UTF-8.

    Example:
        >>> is_unicode("caf\\u00e9"), is_unicode("\\ud800")
        (True, False)
    """
    if text.isascii():  # O(1) in CPython: the common case costs one call
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_strict_json(value: Any, _depth: int = 0) -> bool:
    """Whether ``value`` survives a JSON round trip unchanged (as UTF-8 JSON text).

    Example:
        >>> is_strict_json({"a": [1, 2.5, None]}), is_strict_json((1, 2))
        (True, False)
        >>> is_strict_json("caf\\u00e9"), is_strict_json("\\ud800")
        (True, False)
    """
    t = type(value)
    if t is str:
        return value.isascii() or is_unicode(value)
    if value is None or t is bool or t is int:
        return True
    if t is float:
        return math.isfinite(value)
    if _depth >= MAX_JSON_DEPTH:
        return False
    if t is list:
        return _all_strict(value, _depth)
    if t is dict:
        for k in value:
            if type(k) is not str or not (k.isascii() or is_unicode(k)):
                return False
        return _all_strict(value.values(), _depth)
    return False


def _all_strict(values: Iterable[Any], depth: int) -> bool:
    # Scalars inside containers are checked inline: no call per element.
    for v in values:
        tv = type(v)
        if tv is str:
            if not (v.isascii() or is_unicode(v)):
                return False
        elif not (tv is int or v is None or tv is bool or is_strict_json(v, depth + 1)):
            return False
    return True


_SCALARS = frozenset({str, int, bool, float, type(None), bytes, complex})
_SEQUENCES = frozenset({list, tuple, set, frozenset})


def _plain_nodes(value: object, max_nodes: int) -> int | None:
    """How many values ``value`` holds if it is plain data (else None)."""
    stack = [value]
    count = 0
    while stack:
        v = stack.pop()
        count += 1
        if count > max_nodes:
            return None
        t = type(v)
        if t in _SCALARS:
            continue
        if t in _SEQUENCES:
            stack.extend(v)  # type: ignore[arg-type]
        elif t is dict:
            for k, x in v.items():  # type: ignore[attr-defined]
                stack.append(k)
                stack.append(x)
        else:
            return None
    return count


def classify(
    value: object, json_nodes: int, max_nodes: int = PLAIN_DATA_NODES
) -> tuple[bool, bool]:
    """``(plain, strict_json)`` for a result.

    ``plain``: made only of builtin scalars (None, bool, int, float, complex, str,
    bytes) and list, tuple, set, frozenset and dict, with at most ``max_nodes`` values
    in all (the C pickler can take it). ``strict_json``: plain, at most ``json_nodes``
    values (a JSON text has at least one character per value), and
    :func:`is_strict_json`.

    Example:
        >>> classify([1, "a"], json_nodes=10), classify((1,), json_nodes=10)
        ((True, True), (True, False))
    """
    count = _plain_nodes(value, max_nodes)
    if count is None:
        return False, False
    return True, count <= json_nodes and is_strict_json(value)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_UNITS = {
    "": 1,
    "b": 1,
    **{f"{p}{s}": 1024**power for power, p in enumerate("kmgt", 1) for s in ("", "b", "ib")},
}


def parse_size(value: object) -> int:
    """Bytes from an ``int`` or a size such as ``"8GB"``, ``"512 MiB"``, ``"1048576"``.

    Units are binary (``K``/``KB``/``KiB`` = 1024, up to ``T``), case-insensitive;
    a fraction is allowed (``"1.5G"``). The size must be positive.

    Example:
        >>> parse_size("512MB"), parse_size("1.5k"), parse_size(100)
        (536870912, 1536, 100)

    Raises:
        ValueError: not a positive size, or an unknown unit.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        unit = _UNITS.get(match.group(2).lower())
        if unit is None:
            raise ValueError(f"unknown size unit in {value!r} (use e.g. 512MB, 8GB)")
        number = int(float(match.group(1)) * unit)
    else:
        raise ValueError(f"not a size: {value!r} (use e.g. 512MB, 8GB)")
    if number <= 0:
        raise ValueError(f"not a positive size: {value!r}")
    return number


def is_uuid(text: str) -> bool:
    """Whether ``text`` is a UUID (Daisi and execution ids are).

    Example:
        >>> is_uuid("6f1c2a52-3b5e-4f0e-9a57-0d4a1a1e9d11"), is_uuid("Add Two Numbers")
        (True, False)
    """
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
