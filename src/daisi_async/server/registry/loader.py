"""Loading Daisi folders into :class:`~.spec.DaisiSpec` objects (:func:`load_daisi`,
:func:`load_daisies`), without running any of their code.

Example:
    >>> [s.name for s in load_daisies(Path("examples/daisies"))][:2]  # doctest: +SKIP
    ['Add Two Numbers', 'Always Fails']
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from types import MappingProxyType

from .config import CONFIG_FILE, read_config
from .endpoints import find_endpoints, parse_module
from .entry import DEFAULT_ENTRIES, find_entry, import_paths
from .requirements import missing_requirements, read_requirements
from .schema import Endpoint
from .spec import DaisiSpec, daisi_id, duplicate_id

__all__ = ["DESCRIPTION_FILES", "description_file", "load_daisi", "load_daisies"]

DESCRIPTION_FILES = ("DAISI.md", "README.md")
"""The description files, in order of preference; found in any letter case."""


def load_daisi(folder: Path, *, default_owner: str = "local") -> DaisiSpec:
    """Describe the Daisi in ``folder``; problems go to ``DaisiSpec.error``.

    Example:
        >>> load_daisi(Path("examples/daisies/print-hello")).entry  # doctest: +SKIP
        'app.py'

    Raises:
        NotADirectoryError: ``folder`` is not a directory.
    """
    path = Path(folder).resolve()
    if not path.is_dir():
        raise NotADirectoryError(f"not a Daisi folder: {folder}")
    errors: list[str] = []
    config = read_config(path, errors)
    name = config.name or path.name
    owner = config.owner or default_owner
    for label, value in (("name", name), ("owner", owner)):
        if "/" in value:
            errors.append(f"invalid daisi.toml: {label} {value!r} must not contain '/'")

    entry = find_entry(path, config, errors)
    endpoints: dict[str, Endpoint] = {}
    module_doc: str | None = None
    if entry is not None:
        module = parse_module(path / entry, entry, errors)
        if module is not None:
            module_doc = ast.get_docstring(module)
            endpoints = find_endpoints(module)

    requirements = read_requirements(path)
    description = config.description or description_file(path) or module_doc or ""
    return DaisiSpec(
        id=daisi_id(owner, name),
        name=name,
        owner=owner,
        description=description.strip(),
        path=path,
        entry=entry,
        import_paths=import_paths(path, entry),
        public=config.public,
        workers=config.workers,
        timeout=config.timeout,
        memory=config.memory,
        endpoints=MappingProxyType(endpoints),
        requirements=requirements,
        missing_requirements=missing_requirements(requirements),
        error="; ".join(errors) if errors else None,
        min_workers=config.min_workers,
        max_workers=config.max_workers,
        idle_timeout=config.idle_timeout,
        import_timeout=config.import_timeout,
        env=config.env,
    )


def load_daisies(root: Path, *, default_owner: str = "local") -> list[DaisiSpec]:
    """Find the Daisies under ``root``, sorted by name.

    ``root`` is one Daisi when it has a ``daisi.toml``, or an ``app.py``/``main.py``
    and no sub-folder that is a Daisi, or Python files and no sub-folder that is a
    Daisi. Otherwise each immediate sub-folder (not hidden, not starting with ``_``)
    with a ``daisi.toml``, or with a ``.py`` file and no ``__init__.py`` (a helper
    package is not a Daisi), is one. A second Daisi with the same full name
    (case-insensitive) is kept but broken ("duplicate Daisi name"), with an id
    derived from its path so that ids stay unique.

    Example:
        >>> len(load_daisies(Path("examples/daisies")))  # doctest: +SKIP
        7

    Raises:
        NotADirectoryError: ``root`` is not a directory.
    """
    base = Path(root).resolve()
    if not base.is_dir():
        raise NotADirectoryError(f"not a folder: {root}")
    subfolders = sorted(p for p in base.iterdir() if _is_daisi_folder(p))
    has_main = any((base / n).is_file() for n in DEFAULT_ENTRIES)
    has_python = any(p.is_file() for p in base.glob("*.py"))
    if (base / CONFIG_FILE).is_file() or (not subfolders and (has_main or has_python)):
        return [load_daisi(base, default_owner=default_owner)]

    seen: dict[str, DaisiSpec] = {}
    result: list[DaisiSpec] = []
    for folder in subfolders:
        spec = load_daisi(folder, default_owner=default_owner)
        key = spec.full_name.lower()
        first = seen.setdefault(key, spec)
        if first is not spec:
            message = f"duplicate Daisi name {spec.full_name!r} (also at {first.path})"
            spec = dataclasses.replace(
                spec,
                id=duplicate_id(spec.full_name, spec.path),
                error=message if spec.error is None else f"{message}; {spec.error}",
            )
        result.append(spec)
    result.sort(key=lambda s: (s.name.lower(), s.owner.lower(), s.error is not None, str(s.path)))
    return result


def description_file(folder: Path) -> str | None:
    """The text of the folder's ``DAISI.md``, else ``README.md`` (any letter case), if any.

    An empty file counts as none.
    """
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file())
    except OSError:
        return None
    for wanted in DESCRIPTION_FILES:
        for file in files:
            if file.name.lower() != wanted.lower():
                continue
            try:
                text = file.read_text(encoding="utf-8-sig", errors="replace").strip()
            except OSError:
                continue
            if text:
                return text
    return None


def _is_daisi_folder(path: Path) -> bool:
    if not path.is_dir() or path.name.startswith((".", "_")) or path.name == "__pycache__":
        return False
    if (path / CONFIG_FILE).is_file():
        return True
    if (path / "__init__.py").exists():
        return False
    return any(p.is_file() for p in path.glob("*.py"))
