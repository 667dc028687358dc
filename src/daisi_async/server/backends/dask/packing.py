"""A Daisi's folder as one zip archive, to send to Dask workers with a plugin, and back.

The archive is the same bytes for the same files (sorted names, fixed timestamps), so
its digest is the Daisi's code version: a Daisi that did not change is not sent again.
``__pycache__``, ``.git`` and the runtime's store are left out; symbolic links are
followed. Unpacking refuses names that would land outside the target folder.

Example:
    >>> archive, digest = pack(Path("examples/daisies/print-hello"))  # doctest: +SKIP
    >>> unpack(archive, Path("/tmp/print-hello"))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["LARGE_ARCHIVE", "SKIPPED", "pack", "unpack"]

SKIPPED = frozenset({"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache"})
"""Folder names left out of an archive."""

LARGE_ARCHIVE = 100 * 2**20
"""Archives above this size get a warning: every Dask worker receives the whole folder."""

_EPOCH = (1980, 1, 1, 0, 0, 0)


def _files(folder: Path, skip: Iterable[Path]) -> list[tuple[str, Path]]:
    skipped = {p.resolve() for p in skip}
    found: list[tuple[str, Path]] = []
    for here, dirs, names in os.walk(folder, followlinks=True):
        base = Path(here)
        dirs[:] = sorted(
            d for d in dirs if d not in SKIPPED and (base / d).resolve() not in skipped
        )
        for name in sorted(names):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = base / name
            if path.is_file():
                found.append((path.relative_to(folder).as_posix(), path))
    return found


def pack(folder: Path, *, skip: Iterable[Path] = ()) -> tuple[bytes, str]:
    """The files under ``folder`` (not those under ``skip``) as zip bytes, and their
    digest (hex sha256 of the archive)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, path in _files(folder, skip):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (path.stat().st_mode & 0o777) << 16
            zf.writestr(info, path.read_bytes())
    data = buf.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def unpack(archive: bytes, target: Path) -> None:
    """Write the files of ``archive`` under ``target`` (created).

    Raises:
        ValueError: a name in the archive points outside ``target``.
    """
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        for info in zf.infolist():
            dest = (root / info.filename).resolve()
            if root not in dest.parents:
                raise ValueError(f"the archive names a file outside its folder: {info.filename!r}")
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(zf.read(info))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                dest.chmod(mode | 0o600)
