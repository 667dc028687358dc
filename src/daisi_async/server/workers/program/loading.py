"""Importing a Daisi's entry module as ``__main__``, without its main-guard blocks.

Example:
    >>> module = load_entry("/srv/daisies/adder", "app.py")  # doctest: +SKIP
    >>> module.compute(1, 2)  # doctest: +SKIP
    3
"""

from __future__ import annotations

import ast
import builtins
import os
import sys
import types

import dill

__all__ = ["is_main_guard", "load_entry", "strip_main_guards"]


def is_main_guard(test: ast.expr) -> bool:
    """Whether ``test`` is ``__name__ == "__main__"`` (either way round)."""
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


def strip_main_guards(body: list[ast.stmt]) -> list[ast.stmt]:
    """``body`` with each top-level main guard replaced by its ``else`` branch."""
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If) and is_main_guard(node.test):
            out.extend(node.orelse)  # the "imported" branch, if any
        else:
            out.append(node)
    return out


def load_entry(directory: str, entry: str) -> types.ModuleType:
    """Import ``directory/entry`` as ``__main__`` without running its main-guard blocks."""
    path = os.path.join(directory, entry)
    with open(path, "rb") as f:
        source = f.read()
    tree = ast.parse(source, filename=path)
    tree.body = strip_main_guards(tree.body)
    code = compile(tree, path, "exec", dont_inherit=True)
    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = module
    # dill resolves "__main__" through the module it saw at import time: point it at the
    # Daisi, so functions of classes sent from a caller's __main__ get the Daisi's globals
    # and travel back by reference to the caller's own __main__.
    dill._dill._main_module = module
    exec(code, module.__dict__)
    return module
