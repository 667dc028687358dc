"""Blob bytes on disk: small ones live in the database (a small result in its execution's
row, :data:`ROW_RESULT_BYTES`), large ones in files.

Files are written beside their final name and renamed into place, so a blob file is
either whole or absent; a failed write (disk full) removes its partial file and raises
:class:`~.errors.StorageError`.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from .errors import StorageError, storage_error
from .records import Blob
from .schema import INSERT_BLOB
from .writer import GroupWriter, Op

__all__ = [
    "INLINE_BLOB_BYTES",
    "RESULT_PREFIX",
    "ROW_RESULT_BYTES",
    "BlobFiles",
    "BlobMethods",
    "BlobTooLarge",
    "valid_key",
]

INLINE_BLOB_BYTES = 256 * 1024
"""Blobs up to this size live in the database; larger ones are files."""
ROW_RESULT_BYTES = 1024
"""A result up to this size lives in its execution's row (``result_data``), written by
the same ``UPDATE`` that ends the execution: no row of ``blobs`` (one write less per
call). :meth:`BlobMethods.get_blob` finds it there under its key."""
RESULT_PREFIX = "r-"
"""The key of an execution's result is this prefix and the execution's id."""

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class BlobTooLarge(Exception):
    """An upload went over the configured size limit."""


def valid_key(key: str) -> bool:
    """Whether ``key`` is a well-formed blob or execution key (no path tricks).

    Example:
        >>> valid_key("r-1b4e"), valid_key("../etc/passwd")
        (True, False)
    """
    return bool(_KEY_RE.match(key))


def _as_storage_error(exc: OSError) -> StorageError:
    err = storage_error(exc)
    assert err is not None
    return err


class BlobFiles:
    """The folder of large blobs.

    Example:
        >>> files = BlobFiles(Path(".daisi/blobs"))  # doctest: +SKIP
        >>> files.write("k1", b"x" * 10**6)  # doctest: +SKIP
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._prefix = os.path.join(folder, "")

    def path(self, key: str) -> Path:
        """Where the file of a large blob lives."""
        return Path(self.path_text(key))

    def path_text(self, key: str) -> str:
        """:meth:`path` as text (what a job names; no ``Path`` made per execution)."""
        if not valid_key(key):
            raise ValueError(f"invalid key {key!r}")
        return self._prefix + key

    def write(self, key: str, data: bytes) -> Path:
        """Write a whole blob file; :class:`StorageError` if the disk refuses."""
        final = self.path(key)
        tmp = final.with_name(final.name + ".part")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _as_storage_error(exc) from exc
        return final

    async def spool(
        self, chunks: AsyncIterator[bytes], *, max_bytes: int
    ) -> tuple[str, bytes | Path, int]:
        """Receive a streamed upload: ``(key, bytes, size)`` if small, ``(key, path, size)``
        once past :data:`INLINE_BLOB_BYTES` (then the bytes went to a file)."""
        key = uuid.uuid4().hex
        buf = bytearray()
        tmp = self.folder / f"{key}.part"
        fh = None
        size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise BlobTooLarge(f"the upload is larger than the limit of {max_bytes} bytes")
                if fh is None:
                    buf += chunk
                    if len(buf) > INLINE_BLOB_BYTES:
                        fh = open(tmp, "wb")  # noqa: SIM115, ASYNC230 - closed below; page-cache writes
                        fh.write(buf)
                        buf = bytearray()
                else:
                    fh.write(chunk)
            if fh is None:
                return key, bytes(buf), size
            fh.close()
            fh = None
            final = self.path(key)
            os.replace(tmp, final)
            return key, final, size
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _as_storage_error(exc) from exc
        finally:
            if fh is not None:
                fh.close()
                tmp.unlink(missing_ok=True)

    @staticmethod
    def iterate(blob: Blob, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The blob's bytes in chunks, without loading a large file at once."""
        if blob.data is not None:
            yield blob.data
            return
        assert blob.path is not None
        with open(blob.path, "rb") as fh:
            while chunk := fh.read(chunk_size):
                yield chunk


class BlobMethods:
    """The store's blob operations (a part of :class:`~.store.Store`)."""

    files: BlobFiles
    _writer: GroupWriter

    @property
    def db(self) -> sqlite3.Connection:  # provided by the store
        raise NotImplementedError

    def blob_path(self, key: str) -> str:
        """Where the file of a large blob lives."""
        return self.files.path_text(key)

    def result_blob(self, key: str, data: bytes) -> tuple[str, bytes | Path, int]:
        """A result held in memory, as :meth:`finish` takes it (large ones go to a file)."""
        if len(data) > INLINE_BLOB_BYTES:
            return key, self.files.write(key, data), len(data)
        return key, data, len(data)

    @staticmethod
    def _blob_statement(
        key: str, content: bytes | Path, size: int, owner: str | None
    ) -> tuple[str, tuple[Any, ...]]:
        if isinstance(content, Path):
            return INSERT_BLOB, (key, size, None, str(content), owner, time.time())
        return INSERT_BLOB, (key, size, content, None, owner, time.time())

    def put_blob(self, data: bytes, *, owner: str | None, key: str | None = None) -> str:
        """Store an uploaded object (durable after :meth:`commit`); returns the key."""
        key = key or uuid.uuid4().hex
        content: bytes | Path = data
        if len(data) > INLINE_BLOB_BYTES:
            content = self.files.write(key, data)
        self._add_blob(key, content, len(data), owner)
        return key

    def add_blob_file(self, key: str, path: Path, size: int, *, owner: str | None) -> None:
        """Record a blob whose file is written already (:meth:`BlobFiles.write`); durable
        after :meth:`commit`."""
        self._add_blob(key, path, size, owner)

    def _add_blob(self, key: str, content: bytes | Path, size: int, owner: str | None) -> None:
        def dropped(exc: BaseException) -> None:
            if isinstance(content, Path):
                content.unlink(missing_ok=True)

        statement = self._blob_statement(key, content, size, owner)
        self._writer.add(Op(None, [statement], droppable=True, on_dropped=dropped))

    async def put_blob_stream(
        self, chunks: AsyncIterator[bytes], *, owner: str | None, max_bytes: int
    ) -> tuple[str, int]:
        """Store a streamed upload, spooling to disk past the inline size."""
        key, content, size = await self.files.spool(chunks, max_bytes=max_bytes)
        self._add_blob(key, content, size, owner)
        return key, size

    def get_blob(self, key: str) -> Blob | None:
        """The committed blob, or None (also for malformed keys)."""
        if not valid_key(key):
            return None
        row = self.db.execute(
            "SELECT size, data, path, owner FROM blobs WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return self._row_result(key)
        return Blob(
            key=key, size=row[0], data=row[1], path=Path(row[2]) if row[2] else None, owner=row[3]
        )

    def _row_result(self, key: str) -> Blob | None:
        """The small result kept in its execution's row (see :data:`ROW_RESULT_BYTES`)."""
        if not key.startswith(RESULT_PREFIX):
            return None
        row = self.db.execute(
            "SELECT result_size, result_data, owner FROM executions"
            " WHERE id = ? AND result_key = ? AND result_data IS NOT NULL",
            (key[len(RESULT_PREFIX) :], key),
        ).fetchone()
        if row is None:
            return None
        return Blob(key=key, size=row[0], data=row[1], path=None, owner=row[2])

    @staticmethod
    def iter_blob(blob: Blob, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The blob's bytes in chunks, without loading a large file at once."""
        return BlobFiles.iterate(blob, chunk_size)
