"""Endpoints from a Daisi's entry module, by static analysis (``ast``): nothing is run.

An endpoint is a function *defined* at the top level of the module: not an imported
name, not a class or method, not a name starting with ``_``. Definitions inside plain
``if``/``try``/``with`` blocks count (they run at import time); those in an
``if __name__ == "__main__":`` block do not (the worker never runs it). A later
import, assignment or class of the same name removes the endpoint; a later ``def``
replaces it.

Each parameter is described with its kind, whether it is required, its default (as
strict JSON when it is a literal one, and as source text), its annotation (source
text) and its docstring description (see :mod:`.docstrings`).

Example:
    >>> module = ast.parse("def add(a: int, b: int = 2) -> int:\\n    return a + b\\n")
    >>> [p.default for p in find_endpoints(module)["add"].params]
    [None, 2]
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..._values import is_strict_json
from ..workers.program.loading import is_main_guard
from .docstrings import param_descriptions
from .schema import Endpoint, Param

__all__ = ["find_endpoints", "parse_module"]


def parse_module(file: Path, label: str, errors: list[str]) -> ast.Module | None:
    """The syntax tree of ``file`` (named ``label`` in messages); problems go to ``errors``."""
    try:
        source = file.read_bytes()
    except OSError as exc:
        errors.append(f"cannot read {label}: {exc}")
        return None
    try:
        return ast.parse(source, filename=label)
    except SyntaxError as exc:
        where = f"{label}, line {exc.lineno}" if exc.lineno else label
        kind = type(exc).__name__
        text = f": {exc.text.strip()}" if exc.text and exc.text.strip() else ""
        errors.append(f"{kind} in {where}: {exc.msg}{text}")
    except ValueError as exc:  # null bytes, undecodable source
        errors.append(f"cannot parse {label}: {exc}")
    return None


def _module_statements(body: Iterable[ast.stmt]) -> Iterable[ast.stmt]:
    """Statements run at import time, flattening plain ``if``/``try``/``with`` blocks."""
    for stmt in body:
        if isinstance(stmt, ast.If):
            if is_main_guard(stmt.test):
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


def find_endpoints(module: ast.Module) -> dict[str, Endpoint]:
    """The endpoints of a parsed entry module, in definition order."""
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
    descriptions = param_descriptions(doc) if doc else {}
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
    return value if is_strict_json(value) else None
