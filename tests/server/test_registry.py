"""Unit tests of the Daisi registry: discovery, schemas, ids and lookups (no server).

The entry-module rule and requirements.txt have their own files:
test_registry_entry.py and test_registry_requirements.py.
"""

from __future__ import annotations

import importlib.util
import math
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from tests.server.conftest import EXAMPLES
from tests.support.daisi_folders import make_daisi

from daisi_async.server.registry import (
    NAMESPACE,
    ArgumentsError,
    DaisiSpec,
    Registry,
    load_daisi,
    load_daisies,
)


def endpoint_names(spec: DaisiSpec) -> list[str]:
    return list(spec.endpoints)


# --------------------------------------------------------------------------- endpoints

MODULE = '''
"""A module docstring."""
import os
from math import sqrt, floor as fl
from json import *

def public(a, b=2):
    """Public."""

async def later(x):
    return x

def _private():
    pass

class Thing:
    def method(self):
        pass

def shadowed():
    pass

from os.path import join as shadowed

def twice():
    return 1

def twice(changed=True):
    return 2

try:
    import numpy
    def in_try(): pass
except ImportError:
    def in_except(): pass

if os.name:
    def in_if(): pass

if __name__ == "__main__":
    def only_main(): pass
    public(1)
'''


def test_endpoint_discovery(tmp_path: Path) -> None:
    spec = load_daisi(make_daisi(tmp_path, "d", {"app.py": MODULE}))
    assert spec.error is None
    assert endpoint_names(spec) == ["public", "later", "twice", "in_try", "in_except", "in_if"]
    assert spec.endpoints["later"].is_async
    assert not spec.endpoints["public"].is_async
    assert [p.name for p in spec.endpoints["twice"].params] == ["changed"]  # the last wins
    assert spec.description == "A module docstring."


SIGNATURES = '''
def f(po: int, /, a: "np.ndarray", b: float = 1.5, *args: int, k: str = "x",
      r, lst=[1, {"a": None}], t=(1, 2), c=sqrt(2), neg=-3, **kw: Any) -> dict[str, int]:
    """Do things.

    Args:
        po (int): Positional only.
        a: The array,
            on two lines.
        b: A number.
        *args: Extra numbers.

    Keyword Args:
        k: A key.
    """

def sphinx(x, y):
    """Sphinx style.

    :param x: The x.
    :param int y: The y,
        continued.
    :returns: nothing
    """

def numpy_style(alpha, beta, gamma):
    """Numpy style.

    Parameters
    ----------
    alpha : float
        The alpha.
    beta, gamma : int
        Two at once.

    Returns
    -------
    int
    """
'''


def test_schema(tmp_path: Path) -> None:
    spec = load_daisi(make_daisi(tmp_path, "d", {"app.py": SIGNATURES}))
    f = spec.endpoints["f"]
    table = {p.name: p for p in f.params}
    assert [p.name for p in f.params] == [
        "po", "a", "b", "args", "k", "r", "lst", "t", "c", "neg", "kw",
    ]  # fmt: skip
    assert [p.kind for p in f.params] == [
        "POSITIONAL_ONLY",
        "POSITIONAL_OR_KEYWORD",
        "POSITIONAL_OR_KEYWORD",
        "VAR_POSITIONAL",
        "KEYWORD_ONLY",
        "KEYWORD_ONLY",
        "KEYWORD_ONLY",
        "KEYWORD_ONLY",
        "KEYWORD_ONLY",
        "KEYWORD_ONLY",
        "VAR_KEYWORD",
    ]
    assert [p.name for p in f.params if p.required] == ["po", "a", "r"]
    assert table["b"].default == 1.5 and table["b"].default_repr == "1.5"
    assert table["k"].default == "x" and table["k"].default_repr == "'x'"
    assert table["lst"].default == [1, {"a": None}]
    assert table["t"].default is None and table["t"].default_repr == "(1, 2)"  # not JSON
    assert table["c"].default is None and table["c"].default_repr == "sqrt(2)"
    assert table["neg"].default == -3
    assert table["po"].default_repr is None
    assert table["a"].annotation == "np.ndarray"
    assert table["args"].annotation == "int"
    assert table["r"].annotation is None
    assert f.returns == "dict[str, int]"
    assert table["po"].description == "Positional only."
    assert table["a"].description == "The array, on two lines."
    assert table["args"].description == "Extra numbers."
    assert table["k"].description == "A key."
    assert table["r"].description is None

    sphinx = {p.name: p.description for p in spec.endpoints["sphinx"].params}
    assert sphinx == {"x": "The x.", "y": "The y, continued."}
    numpy = {p.name: p.description for p in spec.endpoints["numpy_style"].params}
    assert numpy == {"alpha": "The alpha.", "beta": "Two at once.", "gamma": "Two at once."}

    data = f.to_json()
    assert data["name"] == "f" and data["doc"].startswith("Do things.")
    assert data["schema"][2] == {
        "id": "b",
        "kind": "POSITIONAL_OR_KEYWORD",
        "required": False,
        "default": 1.5,
        "default_repr": "1.5",
        "annotation": "float",
        "description": "A number.",
    }


def test_check_arguments(tmp_path: Path) -> None:
    source = "def f(po, /, a, b=1, *args, k=2): pass\ndef g(a, **kw): pass\n"
    spec = load_daisi(make_daisi(tmp_path, "d", {"app.py": source}))
    f, g = spec.endpoints["f"], spec.endpoints["g"]
    f.check_arguments(["po", "a"])
    f.check_arguments(["po", "a", "b", "args", "k"])
    with pytest.raises(ArgumentsError, match="missing required argument 'a'") as info:
        f.check_arguments(["po", "b"])
    assert info.value.param == "a"
    with pytest.raises(ArgumentsError, match="unexpected argument 'zzz'") as info:
        f.check_arguments(["po", "a", "zzz"])
    assert info.value.param == "zzz"
    assert isinstance(info.value, ValueError)
    g.check_arguments(["a", "anything", "else"])
    with pytest.raises(ArgumentsError) as info:
        g.check_arguments(["anything"])
    assert info.value.param == "a"


# --------------------------------------------------------------------------- Daisies


def test_ids_are_stable_uuid5(tmp_path: Path) -> None:
    make_daisi(tmp_path, "adder", {"daisi.toml": 'name = "Adder"\nowner = "Me"\n', "app.py": ""})
    first = load_daisies(tmp_path)
    second = load_daisies(tmp_path)
    assert first[0].id == second[0].id == str(uuid.uuid5(NAMESPACE, "me/adder"))
    assert first[0].full_name == "Me/Adder"


def test_defaults_and_config(tmp_path: Path) -> None:
    plain = load_daisi(make_daisi(tmp_path, "plain", {"app.py": "def f(): pass\n"}))
    assert (plain.name, plain.owner, plain.public) == ("plain", "local", True)
    assert (plain.workers, plain.timeout, plain.memory) == (None, None, None)
    assert load_daisi(tmp_path / "plain", default_owner="alice").owner == "alice"

    config = """
        name = "Big One"
        owner = "team"
        description = "From the toml."
        public = false
        workers = 3
        timeout = 60
        memory = "512MB"
        unknown = "ignored"
    """
    spec = load_daisi(make_daisi(tmp_path, "big", {"daisi.toml": config, "app.py": ""}))
    assert spec.error is None
    assert (spec.name, spec.owner, spec.description) == ("Big One", "team", "From the toml.")
    assert (spec.public, spec.workers, spec.timeout) == (False, 3, 60.0)
    assert spec.memory == 512 * 1024**2
    assert spec.path == (tmp_path / "big").resolve()


def test_description_sources(tmp_path: Path) -> None:
    daisi_md = {"DAISI.md": "# From DAISI.md\n", "README.md": "readme", "app.py": '"""doc"""'}
    assert load_daisi(make_daisi(tmp_path, "a", daisi_md)).description == "# From DAISI.md"
    readme = {"README.md": "readme\n", "app.py": '"""doc"""'}
    assert load_daisi(make_daisi(tmp_path, "b", readme)).description == "readme"
    assert load_daisi(make_daisi(tmp_path, "c", {"app.py": '"""doc"""'})).description == "doc"
    assert load_daisi(make_daisi(tmp_path, "d", {"app.py": ""})).description == ""
    empty = {"DAISI.md": "\n", "README.md": "readme", "app.py": ""}
    assert load_daisi(make_daisi(tmp_path, "e", empty)).description == "readme"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"readme.md": "lower"}, "lower"),
        ({"Readme.MD": "mixed"}, "mixed"),
        ({"daisi.md": "daisi", "README.md": "readme"}, "daisi"),
        ({"Daisi.Md": "daisi", "readme.md": "readme"}, "daisi"),
        ({"README.md": "\ufeffwith a BOM"}, "with a BOM"),
        ({"readme.txt": "not markdown", "README": "no suffix"}, "doc"),
    ],
)
def test_description_file_in_any_letter_case(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    spec = load_daisi(make_daisi(tmp_path, "d", {**files, "app.py": '"""doc"""'}))
    assert spec.description == expected


@pytest.mark.parametrize(
    ("toml", "fragment"),
    [
        ("name = ", "invalid daisi.toml"),
        ("workers = 0", "workers"),
        ('timeout = "long"', "timeout"),
        ('memory = "lots"', "memory"),
        ('public = "yes"', "public"),
        ('name = "a/b"', "must not contain '/'"),
    ],
)
def test_invalid_config(tmp_path: Path, toml: str, fragment: str) -> None:
    spec = load_daisi(make_daisi(tmp_path, "d", {"daisi.toml": toml, "app.py": "def f(): pass"}))
    assert spec.error is not None and fragment in spec.error


def test_syntax_error_is_isolated(tmp_path: Path) -> None:
    make_daisi(tmp_path, "good", {"app.py": "def ok(): pass\n"})
    make_daisi(tmp_path, "bad", {"app.py": "def ok():\n    pass\n\ndef broken(:\n    pass\n"})
    specs = {s.name: s for s in load_daisies(tmp_path)}
    bad, good = specs["bad"], specs["good"]
    assert bad.error is not None
    assert "SyntaxError" in bad.error and "app.py" in bad.error and "line 4" in bad.error
    assert bad.to_json()["broken"] == bad.error
    assert good.error is None and endpoint_names(good) == ["ok"]
    assert good.to_json()["broken"] is None


def test_load_daisies_layouts(tmp_path: Path) -> None:
    single = make_daisi(tmp_path, "single", {"app.py": "def f(): pass\n", "utils/__init__.py": ""})
    assert [s.path for s in load_daisies(single)] == [single.resolve()]

    multi = tmp_path / "multi"
    make_daisi(multi, "zeta", {"app.py": ""})
    make_daisi(multi, "Alpha", {"main.py": ""})
    make_daisi(multi, "tomlonly", {"daisi.toml": 'name = "Beta"\n'})
    make_daisi(multi, "_skipped", {"app.py": ""})
    make_daisi(multi, ".hidden", {"app.py": ""})
    make_daisi(multi, "nodaisi", {"data.txt": ""})
    specs = load_daisies(multi)
    assert [s.name for s in specs] == ["Alpha", "Beta", "zeta"]
    assert specs[1].error is not None and specs[1].error.startswith("no entry module: ")


def test_duplicate_names(tmp_path: Path) -> None:
    make_daisi(tmp_path, "one", {"daisi.toml": 'name = "Same"\n', "app.py": ""})
    make_daisi(tmp_path, "two", {"daisi.toml": 'name = "same"\n', "app.py": ""})
    first, second = load_daisies(tmp_path)
    assert first.error is None and first.path.name == "one"
    assert second.error == f"duplicate Daisi name 'local/same' (also at {first.path})"
    assert first.id != second.id
    registry = Registry([first, second])
    assert registry.find("local/SAME") is first
    assert registry.get(second.id) is second


def test_registry_lookups(tmp_path: Path) -> None:
    make_daisi(tmp_path, "a", {"daisi.toml": 'name = "Shared"\nowner = "zed"\n', "app.py": ""})
    make_daisi(tmp_path, "b", {"daisi.toml": 'name = "Shared"\nowner = "amy"\n', "app.py": ""})
    make_daisi(tmp_path, "c", {"daisi.toml": 'name = "Shared"\n', "app.py": ""})
    make_daisi(tmp_path, "my-folder", {"daisi.toml": 'name = "Pretty Name"\n', "app.py": ""})
    specs = load_daisies(tmp_path)
    registry = Registry(specs)
    assert len(registry.all()) == 4
    local = registry.find("shared")
    assert local is not None and local.owner == "local"
    assert Registry([s for s in specs if s.owner != "local"]).find("SHARED").owner == "amy"  # type: ignore[union-attr]
    zed = registry.find("ZED/shared")
    assert zed is not None and zed.owner == "zed"
    assert registry.find(zed.id) is zed
    assert registry.find(zed.id.upper()) is zed
    assert registry.get(zed.id.upper()) is zed
    assert registry.find("pretty name") is registry.find("my-folder") is not None
    assert registry.find("nobody/shared") is None
    assert registry.find("missing") is None
    assert registry.find(str(uuid.uuid4())) is None


# --------------------------------------------------------------------------- examples

EXPECTED = {
    "Add Two Numbers": ["compute"],
    "Always Fails": ["divide", "fail"],
    "Daisi Serialize": ["compute", "make_stack"],
    "Live Logging": ["live_log_test"],
    "Print Hello": ["hello"],
    "Titanic Statistics": ["median", "mean", "percentile", "summary"],
    "Zero Shot Text Classification": ["compute"],
}


def test_examples_load() -> None:
    specs = load_daisies(EXAMPLES)
    assert {s.name: sorted(s.endpoints) for s in specs} == {
        name: sorted(eps) for name, eps in EXPECTED.items()
    }
    for spec in specs:
        assert spec.error is None, spec.error
        assert spec.description
        for endpoint in spec.endpoints.values():
            assert endpoint.doc, f"{spec.name}.{endpoint.name} has no docstring"
    registry = Registry(specs)
    serialize = registry.find("exampledaisies/Daisi Serialize")
    assert serialize is not None and serialize.owner == "exampledaisies"
    assert registry.find("Daisi Serialize") is serialize
    compute = registry.find("Add Two Numbers").endpoints["compute"]  # type: ignore[union-attr]
    assert [p.to_json()["id"] for p in compute.params] == ["firstNumber", "secondNumber"]
    assert compute.params[0].description == "The first number."
    live = registry.find("live logging").endpoints["live_log_test"]  # type: ignore[union-attr]
    assert live.params[2].default == 3


def import_example(folder: str) -> ModuleType:
    file = EXAMPLES / folder / "app.py"
    name = f"example_{folder.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_add_two_numbers() -> None:
    app = import_example("add-two-numbers")
    result = app.compute(firstNumber=5, secondNumber=6)
    assert result == 11 and isinstance(result, int)
    assert app.compute(firstNumber=0.5, secondNumber=1) == 1.5


def test_example_print_hello(capsys: pytest.CaptureFixture[str]) -> None:
    app = import_example("print-hello")
    assert app.hello() == "Hello World!"
    assert app.hello(name="Ada") == "Hello Ada!"
    assert capsys.readouterr().out == "Hello World!\nHello Ada!\n"


def test_example_live_logging(capsys: pytest.CaptureFixture[str]) -> None:
    app = import_example("live-logging")
    assert app.live_log_test(firstNumber=5, secondNumber=6, delay=0.2) == 11
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Step 1/")
    assert lines[-1].startswith("Done")


def test_example_zero_shot() -> None:
    app = import_example("zero-shot")
    result = app.compute(text="Let's go the moon", candidate_labels="astronomy, travel")
    assert result["sequence"] == "Let's go the moon"
    assert result["labels"] == ["astronomy", "travel"]
    assert result["scores"][0] > result["scores"][1]
    assert math.isclose(sum(result["scores"]), 1.0)
    other = app.compute("The band played a concert", ["sports", "music", "gardening"])
    assert other["labels"][0] == "music"
    unknown = app.compute("my garden has tomatoes", ["gardening", "finance"])
    assert unknown["labels"][0] == "gardening"
    with pytest.raises(ValueError):
        app.compute("text", " , ")


def test_example_titanic() -> None:
    app = import_example("titanic-statistics")
    median = app.median()
    assert isinstance(median, float) and median == 28.0
    assert isinstance(app.mean("Fare"), float)
    assert app.percentile("Fare", 0) == 7.225
    assert app.percentile("Fare", 100) == 263.0
    assert app.percentile("Age", 50) == median
    summary: dict[str, Any] = app.summary()
    assert summary["Age"]["count"] == 31 and summary["Fare"]["count"] == 40
    assert "Name" not in summary
    with pytest.raises(ValueError, match="'Height'"):
        app.median("Height")
    with pytest.raises(ValueError, match="not numeric"):
        app.mean("Sex")


def test_example_always_fails(capsys: pytest.CaptureFixture[str]) -> None:
    app = import_example("always-fails")
    with pytest.raises(ZeroDivisionError):
        app.divide()
    assert app.divide(numerator=6, denominator=3) == 2
    with pytest.raises(ValueError, match=r"^boom$"):
        app.fail()
    assert "about to fail" in capsys.readouterr().out


def test_example_daisi_serialize(capsys: pytest.CaptureFixture[str]) -> None:
    np = pytest.importorskip("numpy")
    app = import_example("daisi-serialize")
    stack = app.MapStack(3, 2)
    assert app.compute(map_stack=stack, map=np.zeros((2, 3))) is stack
    assert stack.nb_layers == 1
    app.compute(map_stack=stack, map=np.zeros((3, 3)))  # wrong shape: not added
    assert stack.nb_layers == 1
    assert "Incompatible" in capsys.readouterr().out.splitlines()[-1]
    grids = app.GridStack(nx=4, ny=2)
    result = app.compute(grid_stack=grids, grid=np.ones((2, 4)))
    assert result.nb_layers == 1 and len(result.grids) == 1
    with pytest.raises(ValueError, match="map_stack"):
        app.compute(map_stack=stack)
    made = app.make_stack(nx=5, ny=2, layers=3)
    assert isinstance(made, app.MapStack) and made.nb_layers == 3
    assert made.maps[0].shape == (2, 5)
