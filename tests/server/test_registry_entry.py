"""The entry-module rule of a Daisi folder, one test per branch (no server).

1. ``entry`` in daisi.toml (sub-folders allowed, never outside the folder);
2. ``app.py``, else ``main.py``;
3. the only candidate ``.py`` file;
4. the one candidate with public functions that imports no Daisi client;
5. else broken, naming the candidates.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.daisi_folders import make_daisi

from daisi_async.server.registry import load_daisi, load_daisies

# --------------------------------------------------------------------------- 1. daisi.toml


def test_entry_from_daisi_toml(tmp_path: Path) -> None:
    path = make_daisi(
        tmp_path,
        "d",
        {
            "daisi.toml": 'entry = "service.py"\n',
            "app.py": "def from_app(): pass\n",
            "service.py": "def serve(): pass\n",
        },
    )
    spec = load_daisi(path)
    assert spec.entry == "service.py"
    assert list(spec.endpoints) == ["serve"]
    assert spec.import_paths == (path.resolve(),)
    assert spec.error is None


def test_entry_in_subfolder_importing_a_package(tmp_path: Path) -> None:
    app = """
        import helper
        from pkg.mod import f
        from shared.util import g

        def compute(x: int) -> int:
            return f(x) + helper.h(x) + g(x)
    """
    path = make_daisi(
        tmp_path,
        "d",
        {
            "daisi.toml": 'entry = "src/app.py"\n',
            "src/app.py": app,
            "src/helper.py": "def h(x): return x\n",
            "src/pkg/__init__.py": "",
            "src/pkg/mod.py": "def f(x): return x\n",
            "shared/util.py": "def g(x): return x\n",
            "run.py": "import pydaisi\n",
        },
    ).resolve()
    spec = load_daisi(path)
    assert spec.error is None
    assert spec.entry == "src/app.py"
    assert spec.entry_file == path / "src" / "app.py"
    assert list(spec.endpoints) == ["compute"]
    # The entry's folder first (``import helper``, ``from pkg.mod import f``), then the
    # Daisi's folder (``from shared.util import g``).
    assert spec.import_paths == (path / "src", path)


@pytest.mark.parametrize(
    ("given", "expected"), [("src/svc", "src/svc.py"), ("src\\svc.py", "src/svc.py")]
)
def test_entry_in_subfolder_spellings(tmp_path: Path, given: str, expected: str) -> None:
    toml = f"entry = '{given}'\n"  # a TOML literal string: backslashes stay as they are
    path = make_daisi(tmp_path, "d", {"daisi.toml": toml, "src/svc.py": "def s(): pass\n"})
    spec = load_daisi(path)
    assert (spec.entry, spec.error) == (expected, None)


def test_entry_missing(tmp_path: Path) -> None:
    gone = make_daisi(tmp_path, "gone", {"daisi.toml": 'entry = "nope.py"\n', "app.py": ""})
    spec = load_daisi(gone)
    assert spec.entry is None  # no fallback to app.py: the configured entry is wrong
    assert spec.error == "entry module 'nope.py' not found"


def test_entry_of_the_wrong_type_is_not_replaced(tmp_path: Path) -> None:
    path = make_daisi(tmp_path, "d", {"daisi.toml": "entry = 3\n", "app.py": "def a(): pass\n"})
    spec = load_daisi(path)
    assert spec.entry is None
    assert spec.error == "invalid daisi.toml: entry must be a file name"


@pytest.mark.parametrize("entry", ["../outside.py", "/etc/passwd", "sub/../../x.py", "..\\x.py"])
def test_entry_path_escape_rejected(tmp_path: Path, entry: str) -> None:
    (tmp_path / "outside.py").write_text("def leak(): pass\n")
    (tmp_path / "x.py").write_text("def leak(): pass\n")
    path = make_daisi(tmp_path, "d", {"daisi.toml": f"entry = '{entry}'\n", "app.py": ""})
    spec = load_daisi(path)
    assert spec.entry is None
    assert spec.error == (f"invalid daisi.toml: entry {entry!r} must stay inside the Daisi folder")
    assert spec.endpoints == {}


def test_entry_symlink_escape_rejected(tmp_path: Path) -> None:
    (tmp_path / "outside.py").write_text("def leak(): pass\n")
    path = make_daisi(tmp_path, "d", {"daisi.toml": 'entry = "link.py"\n'})
    (path / "link.py").symlink_to(tmp_path / "outside.py")
    spec = load_daisi(path)
    assert spec.entry is None
    assert spec.error is not None and "inside the Daisi folder" in spec.error


# --------------------------------------------------------------------------- 2. app.py, main.py


def test_entry_prefers_app_then_main(tmp_path: Path) -> None:
    both = make_daisi(tmp_path, "both", {"app.py": "def a(): pass\n", "main.py": "def m(): pass\n"})
    assert load_daisi(both).entry == "app.py"
    main = make_daisi(tmp_path, "main", {"main.py": "def m(): pass\n", "other.py": "def o(): 1\n"})
    assert load_daisi(main).entry == "main.py"
    # app.py wins even when it imports a client (a Daisi may call other Daisies).
    chained = make_daisi(tmp_path, "chain", {"app.py": "import pydaisi\ndef c(): pass\n"})
    assert load_daisi(chained).entry == "app.py"


# --------------------------------------------------------------------------- 3. the only file


def test_entry_single_file(tmp_path: Path) -> None:
    path = make_daisi(
        tmp_path,
        "single",
        {
            "hello.py": "def hi(): pass\n",
            "_helpers.py": "def h(): pass\n",
            "test_hello.py": "def test(): pass\n",
            "setup.py": "def setup(): pass\n",
            "conftest.py": "def fixture(): pass\n",
        },
    )
    spec = load_daisi(path)
    assert (spec.entry, spec.error) == ("hello.py", None)
    assert list(spec.endpoints) == ["hi"]


def test_entry_single_file_even_without_functions(tmp_path: Path) -> None:
    spec = load_daisi(make_daisi(tmp_path, "d", {"script.py": "import pydaisi\n"}))
    assert (spec.entry, spec.error, dict(spec.endpoints)) == ("script.py", None, {})


# --------------------------------------------------------------------------- 4. not a client


@pytest.mark.parametrize(
    "client",
    [
        "import pydaisi as pyd\n",
        "from pydaisi import Daisi\n",
        "from daisi_async import Daisi\n",
        "import daisi_async.sync\n",
        "import daisi\n",
        'if __name__ == "__main__":\n    from daisi_async import Daisi\n',
    ],
)
def test_entry_model_beside_a_client_script(tmp_path: Path, client: str) -> None:
    path = make_daisi(
        tmp_path,
        "d",
        {
            "model.py": "import numpy\n\ndef predict(x):\n    return x\n",
            "run.py": client + "\ndef main():\n    pass\n",
        },
    )
    spec = load_daisi(path)
    assert (spec.entry, spec.error) == ("model.py", None)
    assert list(spec.endpoints) == ["predict"]


def test_entry_skips_modules_without_public_functions(tmp_path: Path) -> None:
    files = {
        "model.py": "from constants import K\n\ndef predict(x):\n    return x * K\n",
        "constants.py": "K = 2\n\ndef _private(): pass\n",
        "daisi_flow.py": "import pydaisi\n\ndef flow(): pass\n",
    }
    spec = load_daisi(make_daisi(tmp_path, "d", files))
    assert (spec.entry, spec.error) == ("model.py", None)


def test_entry_own_module_named_daisi_is_not_a_client(tmp_path: Path) -> None:
    files = {
        "model.py": "import daisi\n\ndef predict(x):\n    return daisi.K * x\n",
        "daisi.py": "K = 2\n",
        "run.py": "import pydaisi\n\ndef main(): pass\n",
    }
    spec = load_daisi(make_daisi(tmp_path, "d", files))
    assert (spec.entry, spec.error) == ("model.py", None)


def test_entry_skips_a_module_that_does_not_parse(tmp_path: Path) -> None:
    files = {"model.py": "def predict(x):\n    return x\n", "old.py": 'print "python 2"\n'}
    spec = load_daisi(make_daisi(tmp_path, "d", files))
    assert (spec.entry, spec.error) == ("model.py", None)


# --------------------------------------------------------------------------- 5. broken


def test_entry_two_candidates_is_broken_naming_both(tmp_path: Path) -> None:
    files = {
        "one.py": "def a(): pass\n",
        "two.py": "def b(): pass\n",
        "run.py": "import pydaisi\n",
        "notes.py": "X = 1\n",
    }
    spec = load_daisi(make_daisi(tmp_path, "two", files))
    assert spec.entry is None
    assert spec.endpoints == {}
    assert spec.error == (
        "no entry module: cannot tell which of notes.py (defines no public function), "
        "one.py, run.py (imports the Daisi client pydaisi), two.py is the Daisi; "
        'set entry = "one.py" in daisi.toml (or name that module app.py)'
    )


def test_entry_no_candidate_is_broken_naming_all(tmp_path: Path) -> None:
    files = {"run.py": "from daisi_async import Daisi\n", "bad.py": "def (:\n"}
    spec = load_daisi(make_daisi(tmp_path, "d", files))
    assert spec.entry is None
    assert spec.error is not None
    assert spec.error.startswith("no entry module: cannot tell which of bad.py (SyntaxError")
    assert "run.py (imports the Daisi client daisi_async)" in spec.error
    assert 'set entry = "bad.py" in daisi.toml' in spec.error


def test_entry_no_python_file(tmp_path: Path) -> None:
    path = make_daisi(tmp_path, "d", {"daisi.toml": 'name = "Empty"\n', "test_x.py": ""})
    spec = load_daisi(path)
    assert spec.entry is None
    assert spec.error == (
        "no entry module: no app.py, main.py or other candidate .py file; "
        "add app.py, or set entry in daisi.toml"
    )


def test_broken_entry_does_not_break_the_others(tmp_path: Path) -> None:
    make_daisi(tmp_path, "ambiguous", {"a.py": "def a(): pass\n", "b.py": "def b(): pass\n"})
    make_daisi(tmp_path, "fine", {"model.py": "def m(): pass\n", "run.py": "import pydaisi\n"})
    specs = {s.name: s for s in load_daisies(tmp_path)}
    assert specs["ambiguous"].error is not None and "a.py, b.py" in specs["ambiguous"].error
    assert specs["fine"].error is None and specs["fine"].entry == "model.py"
