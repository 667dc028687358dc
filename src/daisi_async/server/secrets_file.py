"""Secrets per Daisi (``daisi serve --secrets FILE``): read, checked, matched, never shown.

The file is TOML, a table per Daisi, named by the Daisi's name or ``owner/name``
(letter case does not matter), holding ``NAME = "value"`` strings::

    ["NASA Images"]
    MY_NASA_KEY = "..."

    ["alice/Weather"]
    WEATHER_TOKEN = "..."

A Daisi's secrets reach only that Daisi's workers, as environment variables (over its
``[env]``, under ``DAISI_BASE_URL``; see :mod:`~daisi_async.server.workers.environment`).
An ``owner/name`` table wins over a name table for the same variable. A name table that
names Daisies of several owners reaches none of them (a warning says to write
``owner/name``); a table that names no Daisi is a warning, not an error. The file must
lie outside the served folder and the store (workers could read it there); in the
sandbox it is hidden from workers wherever it is.

Values never appear in what the runtime prints or answers: errors and warnings name
tables and variables only, and :class:`Secrets` shows no values in its ``repr``.

Example:
    >>> secrets = Secrets({"nasa images": {"MY_NASA_KEY": "k"}})
    >>> secrets
    Secrets(1 table)
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from .registry import DaisiSpec
from .workers.environment import valid_variables

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["Secrets", "SecretsError", "load_secrets"]


class SecretsError(Exception):
    """The secrets file can't be used (the message names no value)."""


class Secrets:
    """The secrets of each Daisi, by lowercased table name (see the module docstring)."""

    def __init__(
        self, tables: Mapping[str, Mapping[str, str]] | None = None, *, path: Path | None = None
    ) -> None:
        self._tables = {name.lower(): dict(values) for name, values in (tables or {}).items()}
        self.path = path
        """The file they were read from (hidden from sandboxed workers)."""

    def __repr__(self) -> str:
        n = len(self._tables)
        return f"Secrets({n} table{'' if n == 1 else 's'})"

    def __bool__(self) -> bool:
        return bool(self._tables)

    def _owners(self, specs: Iterable[DaisiSpec]) -> dict[str, set[str]]:
        owners: dict[str, set[str]] = {}
        for spec in specs:
            owners.setdefault(spec.name.lower(), set()).add(spec.owner.lower())
        return owners

    def for_daisi(self, spec: DaisiSpec, served: Iterable[DaisiSpec]) -> dict[str, str]:
        """The secrets of ``spec`` among the ``served`` Daisies: its name table (when the
        name is not shared by Daisies of several owners), then its ``owner/name`` table."""
        found: dict[str, str] = {}
        by_name = self._tables.get(spec.name.lower())
        if by_name and len(self._owners(served).get(spec.name.lower(), ())) <= 1:
            found.update(by_name)
        found.update(self._tables.get(spec.full_name.lower(), {}))
        return found

    def problems(self, served: Iterable[DaisiSpec]) -> list[str]:
        """Warnings about tables that reach no Daisi among ``served``: unknown names, and
        names shared by Daisies of several owners."""
        specs = list(served)
        owners = self._owners(specs)
        full = {s.full_name.lower() for s in specs}
        warnings = []
        for table in sorted(self._tables):
            if table in full:
                continue
            if table not in owners:
                warnings.append(
                    f"the secrets file has a table [{table!r}] that names no served Daisi"
                    " (its secrets reach no one)"
                )
            elif len(owners[table]) > 1:
                warnings.append(
                    f"the secrets table [{table!r}] names Daisies of several owners"
                    f" ({', '.join(sorted(owners[table]))}): its secrets reach none of them;"
                    " name the table owner/name"
                )
        return warnings


def _where(exc: tomllib.TOMLDecodeError) -> str:
    """The parser's message, without any quoted text of the file (it could be a secret)."""
    text = str(exc)
    if "'" in text or '"' in text:
        found = re.search(r"\(at [^()]*\)", text)
        return f"a syntax error {found.group(0)}" if found else "a syntax error"
    return text


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def load_secrets(path: Path, *, root: Path, store: Path) -> Secrets:
    """Read and check the secrets file ``path`` of a server of ``root`` with ``store``.

    Raises:
        SecretsError: unreadable, not TOML, inside the served folder or the store, or a
            table or variable is invalid (the message names them, never a value).
    """
    real = Path(os.path.realpath(path))
    for folder, what in ((root, "the served folder"), (store, "the store")):
        if _inside(real, Path(os.path.realpath(folder))):
            raise SecretsError(
                f"{path} is inside {what} ({folder}): Daisi code could read it there;"
                " keep the secrets file elsewhere"
            )
    try:
        text = real.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretsError(f"can't read {path}: {type(exc).__name__}: {exc.args[-1]}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SecretsError(f"{path} is not valid TOML: {_where(exc)}") from None
    tables: dict[str, dict[str, str]] = {}
    problems: list[str] = []
    for name, table in data.items():
        if not isinstance(table, dict):
            problems.append(
                f"{name!r} must be a table named after a Daisi ([{name!r}] or"
                ' ["owner/name"]), holding NAME = "value" lines'
            )
            continue
        if not name.strip():
            problems.append("a table has an empty name")
            continue
        if name.lower() in tables:
            problems.append(f"the table [{name!r}] appears twice (letter case does not matter)")
            continue
        tables[name.lower()] = valid_variables(table, problems, f"[{name!r}]: ")
    if problems:
        raise SecretsError(f"invalid secrets file {path}: " + "; ".join(problems))
    return Secrets(tables, path=real)
