"""The package's shape: imports point one way (no cycles), modules stay small, the
public names are listed once and show as ``daisi_async.Name``, and asyncio timeouts are
caught by their asyncio name (Python 3.10 is supported)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import daisi_async

PACKAGE = Path(daisi_async.__file__).parent


def _client_files() -> dict[str, Path]:
    """Module name -> file, for the client: ``__init__`` and the ``_*`` modules/packages."""
    out = {"daisi_async": PACKAGE / "__init__.py"}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if not rel.parts[0].startswith("_") or rel.parts[0] in ("__init__.py", "__main__.py"):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(["daisi_async", *parts])] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Client modules that ``name`` imports, anywhere in the file (``TYPE_CHECKING``
    blocks and function bodies included: a cycle is a cycle for a reader too)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target != "daisi_async":
                found.add(target)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles_among_client_modules() -> None:
    files = _client_files()
    graph = {name: _imports(name, path, set(files)) for name, path in files.items()}
    assert "daisi_async._dialects.v1.wait" in graph["daisi_async._dialects.v1.submit"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_over_500_lines() -> None:
    sizes = {
        path.relative_to(PACKAGE).as_posix(): len(path.read_text().splitlines())
        for path in sorted(PACKAGE.rglob("*.py"))
    }
    assert "server/engine.py" in sizes and "_sync.py" in sizes  # client and server alike
    assert {name: n for name, n in sizes.items() if n > 500} == {}


def test_public_names_are_listed_once_and_show_as_the_package() -> None:
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    typed = {
        alias.asname
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname
    }
    exports = set(daisi_async._EXPORTS)
    assert typed == exports  # the names type checkers see are the names exported
    assert set(daisi_async.__all__) == exports | {"__version__"}
    for name in exports:
        obj = getattr(daisi_async, name)
        if inspect.isclass(obj):
            assert obj.__module__ == "daisi_async", name
            assert f"{obj.__module__}.{obj.__qualname__}" == f"daisi_async.{name}"


def test_the_version_is_written_once() -> None:
    pyproject = (PACKAGE.parents[1] / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'path = "src/daisi_async/__init__.py"' in pyproject
    assert "\nversion =" not in pyproject
    assert daisi_async.__version__.count(".") >= 2


def _catches_builtin_timeout(tree: ast.AST) -> list[int]:
    """Lines that catch (or suppress) the builtin ``TimeoutError`` by name."""
    lines: list[int] = []
    for node in ast.walk(tree):
        caught: list[ast.expr] = []
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            caught = list(node.type.elts) if isinstance(node.type, ast.Tuple) else [node.type]
        elif isinstance(node, ast.Call) and ast.unparse(node.func) == "contextlib.suppress":
            caught = list(node.args)
        lines += [e.lineno for e in caught if isinstance(e, ast.Name) and e.id == "TimeoutError"]
    return lines


def test_asyncio_timeouts_are_caught_as_asyncio_timeout_error() -> None:
    """``asyncio.wait_for`` raises ``asyncio.TimeoutError``, which is the builtin
    ``TimeoutError`` only from Python 3.11: a module that uses it catches the asyncio
    name, or on 3.10 (supported) a wait that times out is a 500."""
    wrong = {
        str(path.relative_to(PACKAGE)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if "asyncio.wait_for(" in (text := path.read_text())
        and (lines := _catches_builtin_timeout(ast.parse(text)))
    }
    assert wrong == {}


def test_the_timeout_check_finds_builtin_catches() -> None:
    code = (
        "try:\n    pass\nexcept (OSError, TimeoutError):\n    pass\n"
        "with contextlib.suppress(TimeoutError):\n    pass\n"
    )
    assert _catches_builtin_timeout(ast.parse(code)) == [3, 5]
