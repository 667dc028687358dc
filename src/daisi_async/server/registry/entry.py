"""Which module of a Daisi folder is its entry module (the one whose functions are served).

The rule, first match wins:

1. ``entry`` in ``daisi.toml``: a file inside the folder, possibly in a sub-folder
   (``entry = "src/app.py"``; ``.py`` may be left out). A path that leaves the folder
   (absolute, ``..``, or a symbolic link pointing out) is refused.
2. ``app.py``, else ``main.py``.
3. The folder's only candidate ``.py`` file. Candidates are the ``.py`` files of the
   folder itself, except ``setup.py``, ``conftest.py``, ``test_*.py`` and names
   starting with ``_``.
4. The one candidate that defines public top-level functions and does not import a
   Daisi client (``pydaisi``, ``daisi_async`` or ``daisi``, unless that name is a
   module of the folder itself): a client script such as ``run.py`` next to the
   Daisi is not the Daisi. A candidate that does not parse is not chosen here.
5. Otherwise the Daisi is broken, with a message that names the candidates (and why
   each was not chosen) and shows the ``entry = "..."`` line to add to ``daisi.toml``.

Example:
    >>> errors: list[str] = []
    >>> find_entry(Path("examples/daisies/print-hello"), DaisiConfig(), errors)  # doctest: +SKIP
    'app.py'
"""

from __future__ import annotations

import ast
from pathlib import Path

from .config import DaisiConfig
from .endpoints import find_endpoints, parse_module

__all__ = [
    "CLIENT_MODULES",
    "DEFAULT_ENTRIES",
    "candidate_modules",
    "client_import",
    "find_entry",
    "import_paths",
]

DEFAULT_ENTRIES = ("app.py", "main.py")
"""The entry module's usual names, in order of preference."""

CLIENT_MODULES = frozenset({"pydaisi", "daisi_async", "daisi"})
"""Top-level packages of Daisi clients: a module that imports one calls Daisies."""

_NOT_CANDIDATES = frozenset({"setup.py", "conftest.py"})


def find_entry(folder: Path, config: DaisiConfig, errors: list[str]) -> str | None:
    """The entry module of ``folder`` relative to it (``"app.py"``, ``"src/app.py"``).

    ``folder`` must be absolute and resolved. When there is none, the reason goes to
    ``errors`` and the result is None.
    """
    if config.entry_set:
        return _configured(folder, config.entry, errors) if config.entry else None
    for name in DEFAULT_ENTRIES:
        if (folder / name).is_file():
            return name
    candidates = candidate_modules(folder)
    if len(candidates) == 1:
        return candidates[0]
    local = _local_modules(folder)
    reasons = {name: _not_a_daisi(folder / name, local) for name in candidates}
    chosen = [name for name, reason in reasons.items() if reason is None]
    if len(chosen) == 1:
        return chosen[0]
    errors.append(_no_entry(reasons))
    return None


def candidate_modules(folder: Path) -> list[str]:
    """The folder's ``.py`` files that may be its entry module (rule 3), sorted."""
    try:
        files = [p for p in folder.glob("*.py") if p.is_file()]
    except OSError:
        return []
    return sorted(
        p.name
        for p in files
        if not p.name.startswith(("_", "test_")) and p.name not in _NOT_CANDIDATES
    )


def client_import(module: ast.Module, local: frozenset[str] = frozenset()) -> str | None:
    """The Daisi client that ``module`` imports anywhere (``"pydaisi"``), or None.

    Names in ``local`` (the folder's own modules and sub-folders) are not clients.

    Example:
        >>> client_import(ast.parse("import pydaisi as pyd"))
        'pydaisi'
    """
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.partition(".")[0]
            if top in CLIENT_MODULES and top not in local:
                return top
    return None


def import_paths(folder: Path, entry: str | None) -> tuple[Path, ...]:
    """The folders a worker puts first on ``sys.path``, in order.

    The entry module's own folder first (``import sibling`` works, as when Python
    runs a script), then the Daisi's folder (``from sub_folder.module import x``).

    Example:
        >>> import_paths(Path("/d"), "src/app.py")
        (PosixPath('/d/src'), PosixPath('/d'))
    """
    if entry is None:
        return (folder,)
    parent = (folder / entry).parent
    return (folder,) if parent == folder else (parent, folder)


def _configured(folder: Path, given: str, errors: list[str]) -> str | None:
    candidate = Path(given.replace("\\", "/"))
    outside = f"invalid daisi.toml: entry {given!r} must stay inside the Daisi folder"
    if candidate.is_absolute() or ".." in candidate.parts:
        errors.append(outside)
        return None
    if not (folder / candidate).is_file() and candidate.suffix != ".py":
        candidate = candidate.with_name(candidate.name + ".py")
    target = (folder / candidate).resolve()
    if not target.is_relative_to(folder):
        errors.append(outside)
        return None
    if not target.is_file():
        errors.append(f"entry module {given!r} not found")
        return None
    return candidate.as_posix()


def _local_modules(folder: Path) -> frozenset[str]:
    try:
        return frozenset(
            p.name if p.is_dir() else p.stem
            for p in folder.iterdir()
            if p.suffix == ".py" or p.is_dir()
        )
    except OSError:
        return frozenset()


def _not_a_daisi(file: Path, local: frozenset[str]) -> str | None:
    """Why the candidate ``file`` is not taken for the Daisi (rule 4), or None."""
    problems: list[str] = []
    module = parse_module(file, file.name, problems)
    if module is None:
        return problems[0] if problems else "cannot be parsed"
    client = client_import(module, local)
    if client is not None:
        return f"imports the Daisi client {client}"
    if not find_endpoints(module):
        return "defines no public function"
    return None


def _no_entry(reasons: dict[str, str | None]) -> str:
    if not reasons:
        return (
            "no entry module: no app.py, main.py or other candidate .py file; "
            "add app.py, or set entry in daisi.toml"
        )
    listed = ", ".join(name if why is None else f"{name} ({why})" for name, why in reasons.items())
    example = next((name for name, why in reasons.items() if why is None), next(iter(reasons)))
    return (
        f"no entry module: cannot tell which of {listed} is the Daisi; "
        f'set entry = "{example}" in daisi.toml (or name that module app.py)'
    )
