"""Find Daisies in a folder and describe their endpoints, without running their code.

Everything here is static analysis (``ast``): the server process never imports or
executes a Daisi's module; its workers do. A Daisi is a folder with an optional
``daisi.toml``, an entry module, an optional ``requirements.txt`` and an optional
``DAISI.md`` (else ``README.md``). See ``DESIGN.md`` §4.

Example:
    >>> registry = Registry(load_daisies(Path("examples/daisies")))  # doctest: +SKIP
    >>> registry.find("Add Two Numbers").endpoints["compute"].to_json()  # doctest: +SKIP
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.metadata
import math
import re
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "DEFAULT_TIMEOUT",
    "NAMESPACE",
    "ArgumentsError",
    "DaisiSpec",
    "Endpoint",
    "Param",
    "Registry",
    "load_daisi",
    "load_daisies",
]

NAMESPACE = uuid.UUID("6f1c2a52-3b5e-4f0e-9a57-0d4a1a1e9d11")
"""The uuid5 namespace of Daisi ids: ``uuid5(NAMESPACE, "owner/name".lower())``."""

DEFAULT_TIMEOUT = 1800.0
"""The time limit of an execution, in seconds, when ``daisi.toml`` sets none."""

CONFIG_FILE = "daisi.toml"
REQUIREMENTS_FILE = "requirements.txt"
NO_ENTRY = "no entry module: add app.py or set entry in daisi.toml"

_DESCRIPTION_FILES = ("DAISI.md", "README.md")
_IGNORED_SINGLE_FILES = frozenset({"setup.py", "conftest.py"})

if sys.version_info >= (3, 11):
    import tomllib

    def _parse_toml(text: str) -> dict[str, Any]:
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(str(exc)) from exc

else:  # pragma: no cover - Python 3.10

    def _parse_toml(text: str) -> dict[str, Any]:
        raise ValueError("reading daisi.toml needs Python 3.11 or later (tomllib)")


# --------------------------------------------------------------------------- schemas


@dataclass(frozen=True)
class Param:
    """One parameter of an endpoint, as the wire protocol describes it."""

    name: str
    kind: str
    """The ``inspect.Parameter`` kind name, e.g. ``"POSITIONAL_OR_KEYWORD"``."""
    required: bool
    """False when the parameter has a default, and for ``*args`` / ``**kwargs``."""
    default: Any = field(hash=False)
    """The default as a strict JSON value when it is a literal one, else None."""
    default_repr: str | None
    """The default's Python source text, None when there is no default."""
    annotation: str | None
    description: str | None
    """The parameter's description from the function's docstring, if found."""

    def to_json(self) -> dict[str, Any]:
        """The protocol's *Param* object."""
        return {
            "id": self.name,
            "kind": self.kind,
            "required": self.required,
            "default": self.default,
            "default_repr": self.default_repr,
            "annotation": self.annotation,
            "description": self.description,
        }


class ArgumentsError(ValueError):
    """Arguments that do not bind to an endpoint's signature; ``param`` names the culprit."""

    def __init__(self, message: str, param: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True)
class Endpoint:
    """A function defined at the top level of a Daisi's entry module."""

    name: str
    params: tuple[Param, ...]
    doc: str | None
    returns: str | None
    is_async: bool

    @property
    def accepts_any_keyword(self) -> bool:
        """True when the function takes ``**kwargs``."""
        return any(p.kind == "VAR_KEYWORD" for p in self.params)

    def to_json(self) -> dict[str, Any]:
        """The protocol's *Endpoint* object."""
        return {
            "name": self.name,
            "doc": self.doc,
            "returns": self.returns,
            "schema": [p.to_json() for p in self.params],
        }

    def check_arguments(self, names: Iterable[str]) -> None:
        """Check that arguments with these names bind to the signature.

        All arguments travel by name, positional-only ones included; a ``*args``
        parameter may be given by name (its value must then be a list).

        Raises:
            ArgumentsError: an argument is not a parameter (and there is no
                ``**kwargs``), or a required parameter is missing.
        """
        given = list(names)
        named = {p.name for p in self.params if p.kind != "VAR_KEYWORD"}
        if not self.accepts_any_keyword:
            for name in given:
                if name not in named:
                    raise ArgumentsError(f"unexpected argument {name!r}", name)
        present = set(given)
        for param in self.params:
            if param.required and param.name not in present:
                raise ArgumentsError(f"missing required argument {param.name!r}", param.name)


# --------------------------------------------------------------------------- Daisies


@dataclass(frozen=True)
class DaisiSpec:
    """Everything the server knows about one Daisi, found without running it."""

    id: str
    name: str
    owner: str
    description: str
    path: Path
    entry: str | None
    public: bool
    workers: int | None
    timeout: float | None
    memory: int | None
    endpoints: Mapping[str, Endpoint] = field(hash=False)
    requirements: tuple[str, ...]
    missing_requirements: tuple[str, ...]
    error: str | None
    """Why the Daisi cannot be used (it is then listed as broken), else None."""

    @property
    def full_name(self) -> str:
        """``owner/name``."""
        return f"{self.owner}/{self.name}"

    @property
    def broken(self) -> bool:
        """True when a load-time problem makes the Daisi unusable."""
        return self.error is not None

    def to_json(self) -> dict[str, Any]:
        """The Daisi object of the protocol (without the run-time ``workers`` count)."""
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "full_name": self.full_name,
            "description": self.description,
            "public": self.public,
            "endpoints": [ep.to_json() for ep in self.endpoints.values()],
            "broken": self.error,
            "missing_requirements": list(self.missing_requirements),
        }


def daisi_id(owner: str, name: str) -> str:
    """The stable id of the Daisi ``owner/name`` (case-insensitive)."""
    return str(uuid.uuid5(NAMESPACE, f"{owner}/{name}".lower()))


def load_daisi(folder: Path, *, default_owner: str = "local") -> DaisiSpec:
    """Describe the Daisi in ``folder``; problems go to ``DaisiSpec.error``.

    Raises:
        NotADirectoryError: ``folder`` is not a directory.
    """
    path = Path(folder).resolve()
    if not path.is_dir():
        raise NotADirectoryError(f"not a Daisi folder: {folder}")
    errors: list[str] = []
    config = _read_config(path, errors)

    name = _config_str(config, "name", errors) or path.name
    owner = _config_str(config, "owner", errors) or default_owner
    for label, value in (("name", name), ("owner", owner)):
        if "/" in value:
            errors.append(f"invalid daisi.toml: {label} {value!r} must not contain '/'")
    public = _config_bool(config, "public", errors, default=True)
    workers = _config_workers(config, errors)
    timeout = _config_timeout(config, errors)
    memory = _config_memory(config, errors)

    entry = _find_entry(path, config, errors)
    endpoints: dict[str, Endpoint] = {}
    module_doc: str | None = None
    if entry is not None:
        module = _parse_module(path / entry, entry, errors)
        if module is not None:
            module_doc = ast.get_docstring(module)
            endpoints = _endpoints(module)

    requirements = _read_requirements(path)
    missing = _missing_requirements(requirements)
    if missing:
        errors.append(f"missing requirements: {', '.join(missing)} (from {REQUIREMENTS_FILE})")

    description = (
        _config_str(config, "description", errors) or _description_file(path) or module_doc or ""
    )
    return DaisiSpec(
        id=daisi_id(owner, name),
        name=name,
        owner=owner,
        description=description.strip(),
        path=path,
        entry=entry,
        public=public,
        workers=workers,
        timeout=timeout,
        memory=memory,
        endpoints=MappingProxyType(endpoints),
        requirements=requirements,
        missing_requirements=missing,
        error="; ".join(errors) if errors else None,
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

    Raises:
        NotADirectoryError: ``root`` is not a directory.
    """
    base = Path(root).resolve()
    if not base.is_dir():
        raise NotADirectoryError(f"not a folder: {root}")
    subfolders = sorted(p for p in base.iterdir() if _is_daisi_folder(p))
    has_main = any((base / n).is_file() for n in ("app.py", "main.py"))
    has_python = any(p.is_file() for p in base.glob("*.py"))
    if (base / CONFIG_FILE).is_file() or (not subfolders and (has_main or has_python)):
        return [load_daisi(base, default_owner=default_owner)]

    specs = [load_daisi(folder, default_owner=default_owner) for folder in subfolders]
    seen: dict[str, DaisiSpec] = {}
    result: list[DaisiSpec] = []
    for spec in specs:
        key = spec.full_name.lower()
        first = seen.get(key)
        if first is None:
            seen[key] = spec
            result.append(spec)
            continue
        message = f"duplicate Daisi name {spec.full_name!r} (also at {first.path})"
        result.append(
            dataclasses.replace(
                spec,
                id=str(uuid.uuid5(NAMESPACE, f"{key}#{spec.path}")),
                error=message if spec.error is None else f"{message}; {spec.error}",
            )
        )
    result.sort(key=lambda s: (s.name.lower(), s.owner.lower(), s.error is not None, str(s.path)))
    return result


class Registry:
    """The Daisies a server knows, looked up by id or by name.

    Lookups are case-insensitive. ``find`` accepts an id, ``owner/name`` or a plain
    name; a plain name shared by several owners resolves to ``default_owner``'s
    Daisi if there is one, else to the first in ``all()`` order. A plain name that
    matches no Daisi name is also tried against folder names (``add-two-numbers``).
    """

    def __init__(self, specs: Iterable[DaisiSpec], *, default_owner: str = "local") -> None:
        self._specs = list(specs)
        self.default_owner = default_owner
        self._by_id: dict[str, DaisiSpec] = {}
        self._by_full_name: dict[str, DaisiSpec] = {}
        for spec in self._specs:
            self._by_id.setdefault(spec.id.lower(), spec)
            self._by_full_name.setdefault(spec.full_name.lower(), spec)

    def all(self) -> list[DaisiSpec]:
        """Every Daisi, broken ones included, in load order (by name)."""
        return list(self._specs)

    def get(self, daisi_id: str) -> DaisiSpec | None:
        """The Daisi with this id (a UUID string, any case), or None."""
        return self._by_id.get(daisi_id.strip().lower())

    def find(self, name_or_id: str) -> DaisiSpec | None:
        """The Daisi called ``name_or_id`` (an id, ``owner/name`` or ``name``), or None."""
        text = name_or_id.strip()
        if _is_uuid(text):
            return self.get(text)
        key = text.lower()
        if "/" in key:
            return self._by_full_name.get(key)
        for candidates in (
            [s for s in self._specs if s.name.lower() == key],
            [s for s in self._specs if s.path.name.lower() == key],
        ):
            if candidates:
                for spec in candidates:
                    if spec.owner.lower() == self.default_owner.lower():
                        return spec
                return candidates[0]
        return None

    def __len__(self) -> int:
        return len(self._specs)

    def __iter__(self) -> Iterator[DaisiSpec]:
        return iter(self._specs)


# --------------------------------------------------------------------------- helpers


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _is_daisi_folder(path: Path) -> bool:
    if not path.is_dir() or path.name.startswith((".", "_")) or path.name == "__pycache__":
        return False
    if (path / CONFIG_FILE).is_file():
        return True
    if (path / "__init__.py").exists():
        return False
    return any(p.is_file() for p in path.glob("*.py"))


def _read_config(path: Path, errors: list[str]) -> dict[str, Any]:
    file = path / CONFIG_FILE
    if not file.is_file():
        return {}
    try:
        return _parse_toml(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        errors.append(f"invalid daisi.toml: {exc}")
        return {}


def _config_str(config: Mapping[str, Any], key: str, errors: list[str]) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(f"invalid daisi.toml: {key} must be a string")
        return None
    return value.strip() or None


def _config_bool(config: Mapping[str, Any], key: str, errors: list[str], *, default: bool) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        errors.append(f"invalid daisi.toml: {key} must be true or false")
        return default
    return value


def _config_workers(config: Mapping[str, Any], errors: list[str]) -> int | None:
    value = config.get("workers")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        errors.append("invalid daisi.toml: workers must be a positive integer")
        return None
    return value


def _config_timeout(config: Mapping[str, Any], errors: list[str]) -> float | None:
    value = config.get("timeout")
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        errors.append("invalid daisi.toml: timeout must be a positive number of seconds")
        return None
    return float(value)


_MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "tib": 1024**4,
}
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_memory(value: object) -> int:
    """Bytes from an int or a size string like ``"8GB"`` or ``"512 MiB"`` (units of 1024).

    Raises:
        ValueError: not a positive size.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and (match := _MEMORY_RE.match(value)):
        unit = _MEMORY_UNITS.get(match.group(2).lower())
        if unit is None:
            raise ValueError(f"unknown size unit in {value!r}")
        number = int(float(match.group(1)) * unit)
    else:
        raise ValueError(f"not a size: {value!r}")
    if number <= 0:
        raise ValueError(f"not a positive size: {value!r}")
    return number


def _config_memory(config: Mapping[str, Any], errors: list[str]) -> int | None:
    value = config.get("memory")
    if value is None:
        return None
    try:
        return parse_memory(value)
    except ValueError as exc:
        errors.append(f"invalid daisi.toml: memory: {exc}")
        return None


def _find_entry(path: Path, config: Mapping[str, Any], errors: list[str]) -> str | None:
    if "entry" in config:
        raw = config["entry"]
        if not isinstance(raw, str) or not raw.strip():
            errors.append("invalid daisi.toml: entry must be a file name")
            return None
        given = raw.strip()
        candidate = Path(given)
        if candidate.is_absolute() or ".." in candidate.parts:
            errors.append(f"invalid daisi.toml: entry {given!r} must stay inside the Daisi folder")
            return None
        if not (path / candidate).is_file() and candidate.suffix != ".py":
            candidate = candidate.with_name(candidate.name + ".py")
        target = (path / candidate).resolve()
        if not target.is_relative_to(path):
            errors.append(f"invalid daisi.toml: entry {given!r} must stay inside the Daisi folder")
            return None
        if not target.is_file():
            errors.append(f"entry module {given!r} not found")
            return None
        return candidate.as_posix()
    for name in ("app.py", "main.py"):
        if (path / name).is_file():
            return name
    candidates = sorted(
        p.name
        for p in path.glob("*.py")
        if p.is_file()
        and not p.name.startswith(("_", "test_"))
        and p.name not in _IGNORED_SINGLE_FILES
    )
    if len(candidates) == 1:
        return candidates[0]
    errors.append(NO_ENTRY)
    return None


def _parse_module(file: Path, entry: str, errors: list[str]) -> ast.Module | None:
    try:
        source = file.read_bytes()
    except OSError as exc:
        errors.append(f"cannot read {entry}: {exc}")
        return None
    try:
        return ast.parse(source, filename=entry)
    except SyntaxError as exc:
        where = f"{entry}, line {exc.lineno}" if exc.lineno else entry
        kind = type(exc).__name__
        text = f": {exc.text.strip()}" if exc.text and exc.text.strip() else ""
        errors.append(f"{kind} in {where}: {exc.msg}{text}")
    except ValueError as exc:  # null bytes, undecodable source
        errors.append(f"cannot parse {entry}: {exc}")
    return None


# ---- endpoints


def _is_main_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.Eq)
        and len(test.comparators) == 1
    ):
        return False
    sides = (test.left, test.comparators[0])
    has_name = any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
    has_main = any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)
    return has_name and has_main


def _module_statements(body: Iterable[ast.stmt]) -> Iterable[ast.stmt]:
    """Statements run at import time, flattening plain ``if``/``try``/``with`` blocks."""
    for stmt in body:
        if isinstance(stmt, ast.If):
            if _is_main_guard(stmt.test):
                yield from _module_statements(stmt.orelse)
            else:
                yield from _module_statements(stmt.body)
                yield from _module_statements(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            yield from _module_statements(stmt.body)
            for handler in stmt.handlers:
                yield from _module_statements(handler.body)
            yield from _module_statements(stmt.orelse)
            yield from _module_statements(stmt.finalbody)
        elif isinstance(stmt, ast.With):
            yield from _module_statements(stmt.body)
        else:
            yield stmt


def _bound_names(stmt: ast.stmt) -> Iterable[str]:
    """Names that a non-``def`` statement (re)binds at module level."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        for alias in stmt.names:
            yield (alias.asname or alias.name).split(".")[0]
    elif isinstance(stmt, ast.ClassDef):
        yield stmt.name
    elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Delete)):
        targets = stmt.targets if isinstance(stmt, (ast.Assign, ast.Delete)) else [stmt.target]
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, ast.Name):
                    yield node.id


def _endpoints(module: ast.Module) -> dict[str, Endpoint]:
    found: dict[str, Endpoint] = {}
    for stmt in _module_statements(module.body):
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if stmt.name.startswith("_"):
                continue
            found[stmt.name] = _endpoint(stmt)
        else:
            for name in _bound_names(stmt):
                found.pop(name, None)
    return found


def _endpoint(func: ast.FunctionDef | ast.AsyncFunctionDef) -> Endpoint:
    doc = ast.get_docstring(func)
    descriptions = _param_descriptions(doc) if doc else {}
    args = func.args
    params: list[Param] = []

    def add(arg: ast.arg, kind: str, default: ast.expr | None) -> None:
        has_default = default is not None
        params.append(
            Param(
                name=arg.arg,
                kind=kind,
                required=not has_default and kind not in ("VAR_POSITIONAL", "VAR_KEYWORD"),
                default=_json_default(default),
                default_repr=ast.unparse(default) if default is not None else None,
                annotation=_annotation(arg.annotation),
                description=descriptions.get(arg.arg),
            )
        )

    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults.extend(args.defaults)
    for index, arg in enumerate(positional):
        kind = "POSITIONAL_ONLY" if index < len(args.posonlyargs) else "POSITIONAL_OR_KEYWORD"
        add(arg, kind, defaults[index])
    if args.vararg is not None:
        add(args.vararg, "VAR_POSITIONAL", None)
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        add(arg, "KEYWORD_ONLY", kw_default)
    if args.kwarg is not None:
        add(args.kwarg, "VAR_KEYWORD", None)
    return Endpoint(
        name=func.name,
        params=tuple(params),
        doc=doc,
        returns=_annotation(func.returns),
        is_async=isinstance(func, ast.AsyncFunctionDef),
    )


def _annotation(node: ast.expr | None) -> str | None:
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value  # a string annotation: "np.ndarray"
    return ast.unparse(node)


def _json_default(node: ast.expr | None) -> Any:
    if node is None:
        return None
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if _is_strict_json(value) else None


def _is_strict_json(value: object) -> bool:
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_strict_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_strict_json(v) for k, v in value.items())
    return False


# ---- docstrings

_GOOGLE_HEADER = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Other Parameters):\s*$"
)
_GOOGLE_ITEM = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:(.*)$")
_NUMPY_HEADER = re.compile(r"^(Parameters|Other Parameters|Keyword Arguments)\s*$")
_NUMPY_RULE = re.compile(r"^-{3,}\s*$")
_NUMPY_ITEM = re.compile(r"^\*{0,2}(\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::.*)?$")
_SPHINX_ITEM = re.compile(
    r"^:(?:param|parameter|arg|argument|key|keyword)\s+(?:[^:]*?\s+)?\*{0,2}(\w+)\s*:(.*)$"
)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _param_descriptions(doc: str) -> dict[str, str]:
    """Parameter descriptions from a Google, numpy or Sphinx style docstring (best effort)."""
    lines = doc.expandtabs().splitlines()
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if _NUMPY_HEADER.match(stripped) and _NUMPY_RULE.match(nxt):
            i = _numpy_section(lines, i + 2, _indent(line), found)
            continue
        if _GOOGLE_HEADER.match(stripped):
            i = _google_section(lines, i + 1, _indent(line), found)
            continue
        sphinx = _SPHINX_ITEM.match(stripped)
        if sphinx:
            current = found.setdefault(sphinx.group(1), [])
            current.append(sphinx.group(2).strip())
            base = _indent(line)
            i += 1
            while i < len(lines) and lines[i].strip() and _indent(lines[i]) > base:
                current.append(lines[i].strip())
                i += 1
            continue
        i += 1
    result = {}
    for name, parts in found.items():
        text = " ".join(p for p in parts if p)
        if text:
            result[name] = text
    return result


def _google_section(lines: list[str], i: int, header: int, found: dict[str, list[str]]) -> int:
    item_indent: int | None = None
    current: list[str] | None = None
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        indent = _indent(line)
        if indent <= header:
            break
        if item_indent is None:
            item_indent = indent
        if indent <= item_indent:
            match = _GOOGLE_ITEM.match(line.strip())
            if match is None:
                current = None
            else:
                current = found.setdefault(match.group(1), [])
                current.append(match.group(2).strip())
        elif current is not None:
            current.append(line.strip())
        i += 1
    return i


def _numpy_section(lines: list[str], i: int, header: int, found: dict[str, list[str]]) -> int:
    current: list[str] | None = None
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if _NUMPY_RULE.match(nxt) or _indent(line) < header:
            break  # the next section
        if _indent(line) == header:
            match = _NUMPY_ITEM.match(stripped)
            if match is None:
                break
            current = []
            for name in match.group(1).split(","):
                found[name.strip().lstrip("*")] = current
        elif current is not None:
            current.append(stripped)
        i += 1
    return i


# ---- requirements and description


def _read_requirements(path: Path) -> tuple[str, ...]:
    file = path / REQUIREMENTS_FILE
    if not file.is_file():
        return ()
    lines: list[str] = []
    for raw in file.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if line.startswith("#"):
            continue
        line = re.split(r"\s+#", line, maxsplit=1)[0].strip()
        if line and not line.startswith("-"):
            lines.append(line)
    return tuple(lines)


_REQUIREMENT_NAME = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(?![:/])")


def _requirement_name(line: str) -> str | None:
    """The distribution name of a requirement line, None for bare URLs and paths."""
    if "://" in line.split("@")[0] or line.startswith((".", "/", "~")):
        return None
    match = _REQUIREMENT_NAME.match(line)
    return match.group(1) if match else None


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _missing_requirements(requirements: Iterable[str]) -> tuple[str, ...]:
    missing: list[str] = []
    installed: set[str] | None = None
    for line in requirements:
        name = _requirement_name(line)
        if name is None:
            continue
        try:
            importlib.metadata.distribution(name)
            continue
        except importlib.metadata.PackageNotFoundError:
            pass
        if installed is None:
            installed = {_normalize(d.name or "") for d in importlib.metadata.distributions()}
        if _normalize(name) not in installed and name not in missing:
            missing.append(name)
    return tuple(missing)


def _description_file(path: Path) -> str | None:
    for name in _DESCRIPTION_FILES:
        file = path / name
        if file.is_file():
            try:
                text = file.read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                continue
            if text:
                return text
    return None
