"""Encoding of arguments and results: strict JSON inline, everything else dill.

Only *strict* JSON travels inline: dicts with ``str`` keys, lists, ``str``, ``int``,
finite ``float``, ``bool`` and ``None``. Tuples, sets, bytes, non-``str`` keys, strings
that are not valid Unicode (lone surrogates such as ``"\\ud800"``, which UTF-8 JSON text
can't carry) and every other object go through dill, so they come back exactly as they
were sent. Classes defined in the caller's ``__main__`` travel by value (dill's default).
"""

from __future__ import annotations

import base64
import io
import platform
from typing import Any

import dill

from ._errors import DaisiSerializationError
from ._values import is_strict_json

__all__ = [
    "LOCAL_VERSIONS",
    "decode_result",
    "dumps",
    "is_strict_json",
    "load_failure",
    "loads",
]

LOCAL_VERSIONS = {"python": platform.python_version(), "dill": str(dill.__version__)}
"""Python and dill versions of this process, sent with payloads and shown on mismatch."""


def dumps(value: Any, *, param: str | None = None) -> memoryview:
    """dill bytes of ``value`` (a view: no second copy of a large payload).

    Raises :class:`DaisiSerializationError` naming ``param`` if impossible.

    Example:
        >>> loads(dumps((1, 2)))
        (1, 2)
    """
    out = io.BytesIO()
    try:
        dill.dump(value, out, protocol=5)
    except Exception as exc:
        where = f"argument {param!r}" if param else "the value"
        raise DaisiSerializationError(
            f"{where} of type {type(value).__name__!r} can't be serialized: "
            f"{type(exc).__name__}: {exc}",
            param=param,
        ) from exc
    return out.getbuffer()


class _ViewReader:
    """A read-only file over a buffer, for the unpickler (``BytesIO`` would copy it)."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._view = memoryview(data).cast("B")
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._view) if n is None or n < 0 else min(len(self._view), self._pos + n)
        chunk = bytes(self._view[self._pos : end])
        self._pos = end
        return chunk

    def readinto(self, b: Any) -> int:
        target = memoryview(b).cast("B")
        n = min(len(target), len(self._view) - self._pos)
        target[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n

    def readline(self) -> bytes:
        start = self._pos
        while start < len(self._view):
            found = bytes(self._view[start : start + (1 << 16)]).find(b"\n")
            if found >= 0:
                return self.read(start + found + 1 - self._pos)
            start += 1 << 16
        return self.read()

    def peek(self, n: int = 1) -> bytes:
        return bytes(self._view[self._pos : self._pos + max(1, n)])


def loads(data: bytes | bytearray | memoryview, *, remote: dict[str, str] | None = None) -> Any:
    """The object in dill bytes; a clear error (with versions) when it can't be opened."""
    try:
        return dill.Unpickler(_ViewReader(data)).load()
    except Exception as exc:
        raise load_failure(exc, remote) from exc


def load_failure(exc: BaseException, remote: dict[str, str] | None) -> DaisiSerializationError:
    """The error for a result that could not be unpickled (with versions if they differ)."""
    hint = ""
    if remote and any(remote.get(k) != v for k, v in LOCAL_VERSIONS.items()):
        hint = (
            f" (made with Python {remote.get('python')} / dill {remote.get('dill')}; "
            f"here Python {LOCAL_VERSIONS['python']} / dill {LOCAL_VERSIONS['dill']})"
        )
    return DaisiSerializationError(
        f"the result could not be deserialized: {type(exc).__name__}: {exc}{hint}"
    )


def decode_result(result: dict[str, Any], *, remote: dict[str, str] | None = None) -> Any:
    """The value of an inline v1 ``result`` object (``data`` must not be null)."""
    if result.get("encoding") == "json":
        return result.get("value")
    return loads(base64.b64decode(result["data"]), remote=remote)
