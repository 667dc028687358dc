"""Turning a result into the ``done`` frame: plain data by the C pickler, the rest by dill,
with classes from the Daisi's own modules pickled by value; JSON text when it is JSON.

Example:
    >>> classify({"a": [1, 2.5, None]}, json_nodes=100)
    (True, True)
    >>> classify((1, 2), json_nodes=100)
    (True, False)
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from typing import Any

import dill

from daisi_async._values import PLAIN_DATA_NODES, classify

from .failures import error, format_exception, safe_str

__all__ = [
    "DEFAULT_INLINE_LIMIT",
    "PLAIN_DATA_NODES",
    "SiblingModules",
    "classify",
    "dumps_by_value",
    "result_frame",
]

DEFAULT_INLINE_LIMIT = 65536
"""Results up to this many dill bytes travel in the ``done`` frame; larger ones go to a file."""


# What a result is (plain data for the C pickler, strict JSON to inline) is decided by
# the project's one rule, shared with the client (:mod:`daisi_async._values`).


def _json_text(value: object, limit: int) -> str | None:
    """Compact JSON text of a strict JSON value, if it has at most ``limit`` characters.

    None too when a string in the value is not valid Unicode (a lone surrogate): UTF-8
    JSON can't carry it, so such a result travels as dill only and comes back exact.
    """
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        return None
    if len(text) > limit:
        return None
    # The text is ASCII: surrogates (lone, or halves of a character beyond U+FFFF) appear
    # as \udXXX escapes. Only then look closer (rare; the text is at most ``limit`` long).
    if "\\ud" in text:
        try:
            json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except UnicodeEncodeError:
            return None
    return text


class SiblingModules:
    """Modules loaded from the Daisi's folder (other than ``__main__``), cached per scan."""

    def __init__(self, directory: str) -> None:
        roots = {
            os.path.normcase(os.path.abspath(directory)),
            os.path.normcase(os.path.realpath(directory)),
        }
        self._roots = tuple(r.rstrip(os.sep) + os.sep for r in roots)
        self._scanned_len = -1
        self._names: list[str] = []

    def names(self) -> list[str]:
        """The names of the modules in ``sys.modules`` loaded from the Daisi's folder."""
        modules = sys.modules
        if len(modules) == self._scanned_len:
            return self._names
        names: list[str] = []
        for name, mod in list(modules.items()):
            if name == "__main__" or mod is None:
                continue
            try:
                file = getattr(mod, "__file__", None)
            except Exception:
                continue
            if not isinstance(file, str):
                continue
            file = os.path.normcase(os.path.abspath(file))
            for root in self._roots:
                if file.startswith(root):
                    rest = file[len(root) :]
                    if "site-packages" not in rest and "dist-packages" not in rest:
                        names.append(name)
                    break
        self._names = names
        self._scanned_len = len(modules)
        return names


def dumps_by_value(result: Any, siblings: SiblingModules) -> bytes:
    """dill bytes of ``result``, with classes from the Daisi's own modules pickled by value.

    The sibling modules are hidden from ``sys.modules`` while pickling, so dill
    cannot find them by reference.
    """
    hidden: list[tuple[str, Any]] = []
    try:
        for name in siblings.names():
            mod = sys.modules.get(name)
            if mod is not None:
                hidden.append((name, mod))
                sys.modules[name] = None  # type: ignore[assignment]
        data: bytes = dill.dumps(result, protocol=5)
        return data
    finally:
        for name, mod in hidden:
            if sys.modules.get(name, mod) is None:
                sys.modules[name] = mod


def result_frame(
    eid: str,
    result: Any,
    *,
    inline_limit: int,
    result_path: str | None,
    siblings: SiblingModules,
) -> tuple[dict[str, Any], bytes]:
    """The ``done`` frame of a successful call: ``(header, body)``; the dill bytes go to
    ``result_path`` instead of the body when they exceed ``inline_limit``."""
    plain, strict_json = classify(result, json_nodes=inline_limit + 1)
    try:
        data = pickle.dumps(result, protocol=5) if plain else dumps_by_value(result, siblings)
    except BaseException as exc:
        message = (
            f"result of type {type(result).__qualname__!r} could not be serialized: "
            f"{type(exc).__name__}: {safe_str(exc)}"
        )
        failure = error("daisi.ResultError", message, format_exception(exc, strip=False))
        return {"op": "done", "eid": eid, "ok": False, "error": failure}, b""
    header: dict[str, Any] = {"op": "done", "eid": eid, "ok": True, "size": len(data)}
    if strict_json:
        text = _json_text(result, inline_limit)
        if text is not None:
            header["json"] = text
    if len(data) <= inline_limit or not result_path:
        return header, data
    try:
        tmp = result_path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, result_path)
    except OSError as exc:
        message = f"the result could not be stored: {type(exc).__name__}: {exc}"
        failure = error("daisi.ResultError", message, format_exception(exc, strip=False))
        return {"op": "done", "eid": eid, "ok": False, "error": failure}, b""
    header["file"] = result_path
    return header, b""
