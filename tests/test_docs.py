"""Every docstring example of the client runs, against a real runtime.

Examples may use top-level ``await`` (as in IPython and Jupyter): each is compiled with
``PyCF_ALLOW_TOP_LEVEL_AWAIT`` and, if it awaits, run on the docstring's own event
loop. Names the examples may use without defining them: ``d`` (``Daisi("Add Two
Numbers")`` in the blocking face's docstrings, else an ``AsyncDaisi`` connected to it),
``asyncio``, ``AsyncDaisi``, ``Daisi`` and ``DAISI_BASE_URL`` pointing at the runtime.
Output is compared as doctest does (with ``ELLIPSIS``); ``# doctest: +SKIP`` is obeyed.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import doctest
import importlib
import inspect
import io
import pkgutil
import sys
import traceback
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

import daisi_async
from daisi_async import AsyncDaisi, Daisi
from daisi_async.testing import LocalRuntime

FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _client_modules() -> list[ModuleType]:
    names = ["daisi_async"]
    for info in pkgutil.walk_packages(daisi_async.__path__, "daisi_async."):
        top = info.name.split(".")[1]
        if not top.startswith("_") or top == "__main__":
            continue  # the server and the public tools (cli, testing) are not the client
        names.append(info.name)
    return [importlib.import_module(n) for n in names]


class _Finder(doctest.DocTestFinder):
    """Also finds public classes whose ``__module__`` is the package (see ``_public``)."""

    def _from_module(self, module: ModuleType | None, object: object) -> bool:
        if inspect.isfunction(object):
            return bool(module is not None and object.__globals__ is module.__dict__)
        if inspect.isclass(object) and object.__module__ == "daisi_async":
            return bool(module is not None and object.__dict__ and _defined_in(object, module))
        return bool(super()._from_module(module, object))  # type: ignore[misc]


def _defined_in(cls: type, module: ModuleType) -> bool:
    return (
        any(inspect.isfunction(v) and v.__globals__ is module.__dict__ for v in vars(cls).values())
        or getattr(module, cls.__name__, None) is cls
    )


def _tests() -> list[doctest.DocTest]:
    found: dict[tuple[str, str], doctest.DocTest] = {}
    finder = _Finder(exclude_empty=True)
    for module in _client_modules():
        for test in finder.find(module):
            if test.examples:
                found.setdefault((test.name.rsplit(".", 1)[-1], test.docstring or ""), test)
    return sorted(found.values(), key=lambda t: t.name)


TESTS = _tests()


def test_every_client_module_is_searched() -> None:
    names = {m.__name__ for m in _client_modules()}
    assert {"daisi_async._daisi", "daisi_async._sync", "daisi_async._dialects.v1.routes"} <= names
    assert len(TESTS) > 40


@pytest.fixture(scope="module")
def runtime_env(daisi_runtime: LocalRuntime) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAISI_BASE_URL", daisi_runtime.url)
        yield daisi_runtime.url


def _check(test: doctest.DocTest, example: doctest.Example, got: str) -> None:
    checker = doctest.OutputChecker()
    if not checker.check_output(example.want, got, OPTIONS):
        diff = checker.output_difference(example, got, OPTIONS)
        pytest.fail(f"{test.name}, line {example.lineno + 1}:\n{example.source}{diff}")


def _run(test: doctest.DocTest, loop: asyncio.AbstractEventLoop, globs: dict[str, Any]) -> None:
    for example in test.examples:
        if example.options.get(doctest.SKIP):
            continue
        code = compile(example.source, f"<doctest {test.name}>", "single", FLAGS)
        out = io.StringIO()
        error: BaseException | None = None
        with contextlib.redirect_stdout(out):
            try:
                result = eval(code, globs)
                if inspect.iscoroutine(result):
                    loop.run_until_complete(result)
            except Exception as exc:
                error = exc
        if error is None:
            if example.exc_msg is not None:
                pytest.fail(f"{test.name}: expected {example.exc_msg!r}, got no error")
            _check(test, example, out.getvalue())
            continue
        if example.exc_msg is None:
            raise error
        last = traceback.format_exception_only(type(error), error)[-1]
        _check(test, doctest.Example(example.source, example.exc_msg), last)


@pytest.mark.parametrize("test", TESTS, ids=[t.name.removeprefix("daisi_async.") for t in TESTS])
def test_docstring_example(test: doctest.DocTest, runtime_env: str) -> None:
    globs = dict(test.globs)
    globs.update(asyncio=asyncio, AsyncDaisi=AsyncDaisi, Daisi=Daisi, DAISI_BASE_URL=runtime_env)
    for name in daisi_async.__all__:
        globs.setdefault(name, getattr(daisi_async, name))
    loop = asyncio.new_event_loop()
    sync_face = test.name.startswith("daisi_async._sync")
    try:
        if sync_face:
            globs["d"] = Daisi("Add Two Numbers")
        else:
            globs["d"] = loop.run_until_complete(AsyncDaisi.connect("Add Two Numbers"))
        _run(test, loop, globs)
    finally:
        d = globs.get("d")
        if isinstance(d, Daisi):
            d.close()
        elif isinstance(d, AsyncDaisi):
            loop.run_until_complete(d.aclose())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        sys.stdout.flush()
