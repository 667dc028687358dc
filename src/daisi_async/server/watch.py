"""What ``daisi serve --reload`` watches: the source files of the served folder.

A :func:`snapshot` maps each watched file (relative path) to its modification time and
size; the server takes one every ``POLL_INTERVAL`` seconds (polling: no dependency, and
a folder of Daisies holds few source files) and reloads when it changes. Watched are
``*.py`` files, ``daisi.toml``, ``requirements.txt`` and the description files
(``DAISI.md``, ``README.md``, any letter case): not data files, which a Daisi may write
into its own folder. Hidden folders, ``__pycache__``, ``node_modules`` and the store
are skipped.

Example:
    >>> snap = snapshot(Path("examples/daisies"))  # doctest: +SKIP
    >>> sorted(snap)[0]  # doctest: +SKIP
    'add-two-numbers/app.py'
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

__all__ = ["POLL_INTERVAL", "Snapshot", "fingerprint", "is_watched", "snapshot"]

POLL_INTERVAL = 1.0
"""Seconds between two snapshots."""

Snapshot = dict[str, tuple[int, int]]
"""``{relative path ("a/b.py"): (mtime in ns, size)}``."""

_NAMES = frozenset({"daisi.toml", "requirements.txt", "daisi.md", "readme.md"})
_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules"})


def is_watched(name: str) -> bool:
    """Whether a file called ``name`` is watched."""
    return name.endswith(".py") or name.lower() in _NAMES


def snapshot(root: Path, *, skip: Collection[Path] = ()) -> Snapshot:
    """The watched files below ``root`` (folders in ``skip`` left out)."""
    skipped = {os.path.normcase(os.path.abspath(p)) for p in skip}
    found: Snapshot = {}
    base = os.path.abspath(root)
    for folder, dirs, files in os.walk(base):
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".")
            and d not in _SKIPPED_DIRS
            and os.path.normcase(os.path.join(folder, d)) not in skipped
        ]
        for name in files:
            if not is_watched(name):
                continue
            path = os.path.join(folder, name)
            try:
                st = os.stat(path)
            except OSError:  # gone meanwhile
                continue
            rel = os.path.relpath(path, base).replace(os.sep, "/")
            found[rel] = (st.st_mtime_ns, st.st_size)
    return found


def fingerprint(snap: Snapshot, root: Path, folder: Path) -> tuple[tuple[str, int, int], ...]:
    """The part of ``snap`` inside ``folder`` (a folder below ``root``, or ``root``)."""
    rel = os.path.relpath(os.path.abspath(folder), os.path.abspath(root)).replace(os.sep, "/")
    prefix = "" if rel == "." else rel + "/"
    return tuple((path, *stat) for path, stat in sorted(snap.items()) if path.startswith(prefix))
