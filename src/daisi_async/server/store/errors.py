"""Storage failures, told apart from bad data, and text made storable."""

from __future__ import annotations

import errno
import sqlite3
from typing import Any

__all__ = ["StorageError", "storable_text", "storage_error"]

# SQLite primary result codes that mean "the storage failed", not "this row is bad".
_SQLITE_FULL = 13
_STORAGE_CODES = {
    5: "the database is busy",  # SQLITE_BUSY
    6: "the database is locked",  # SQLITE_LOCKED
    7: "out of memory",  # SQLITE_NOMEM
    8: "the store is read-only",  # SQLITE_READONLY
    10: "disk I/O error",  # SQLITE_IOERR
    11: "the database file is corrupt",  # SQLITE_CORRUPT
    13: "the disk is full",  # SQLITE_FULL
    14: "the database file can't be opened",  # SQLITE_CANTOPEN
    26: "the database file is not a database",  # SQLITE_NOTADB
}
_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_STORAGE_MESSAGES = ("disk", "full", "readonly", "read-only", "i/o", "locked", "busy", "open")


class StorageError(Exception):
    """A write to the store failed for a reason outside the data (disk full, I/O error).

    ``full`` tells "no space" (answered 507 ``storage_full``) from the rest (503
    ``storage_error``).

    Example:
        >>> StorageError("the disk is full", full=True).code
        'storage_full'
    """

    def __init__(self, message: str, *, full: bool) -> None:
        super().__init__(message)
        self.message = message
        self.full = full

    @property
    def code(self) -> str:
        """``storage_full`` or ``storage_error``."""
        return "storage_full" if self.full else "storage_error"

    @property
    def status(self) -> int:
        """The HTTP status of the reply: 507 or 503."""
        return 507 if self.full else 503


def storage_error(exc: BaseException) -> StorageError | None:
    """The :class:`StorageError` that ``exc`` stands for, or None for a data error."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, OSError):
        full = exc.errno in _FULL_ERRNOS
        what = "the disk is full" if full else f"{exc.strerror or exc}"
        return StorageError(f"the store could not be written: {what}", full=full)
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None:
            primary = code & 0xFF
            if primary in _STORAGE_CODES:
                return StorageError(
                    f"the store could not be written: {_STORAGE_CODES[primary]} ({exc})",
                    full=primary == _SQLITE_FULL,
                )
            return None
        text = str(exc).lower()  # Python < 3.11 has no error code
        if any(word in text for word in _STORAGE_MESSAGES):
            return StorageError(f"the store could not be written: {exc}", full="full" in text)
    if isinstance(exc, (sqlite3.DatabaseError, MemoryError)) and not isinstance(
        exc, (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError)
    ):
        return StorageError(f"the store could not be written: {exc}", full=False)
    return None


def storable_text(text: str) -> str:
    """``text`` with code points that UTF-8 can't hold (lone surrogates) escaped.

    Nothing is dropped: ``"caf\\udce9"`` becomes the visible text ``caf\\udce9``.

    Example:
        >>> storable_text("caf\\udce9.txt")
        'caf\\\\udce9.txt'
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def storable(value: Any) -> Any:
    """A JSON-like value with every string (keys too) made storable."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value
