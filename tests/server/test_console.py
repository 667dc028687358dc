"""What ``daisi serve`` prints: the startup summary (URL, store, isolation, the Daisies
loaded, building and broken with their reasons) and, by ``--log-level``, the access log
and the runtime's warnings."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest
from tests.support.daisi_folders import make_daisi

from daisi_async.cli.serve import settings_of
from daisi_async.testing import LocalRuntime

ACCESS_LINE = '"GET /pebble-api/capabilities HTTP/1.1" 200'


@pytest.fixture
def silent_index() -> Iterator[str]:
    """A package index that accepts connections and never answers: a build against it
    stays ``building`` for as long as the test needs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/simple"


def test_the_summary_lists_the_daisies_loaded_building_and_broken_with_reasons(
    tmp_path: Path, silent_index: str
) -> None:
    root = tmp_path / "daisies"
    make_daisi(root, "good", {"app.py": "def hi():\n    return 1\n\ndef ho():\n    return 2\n"})
    make_daisi(root, "bad", {"daisi.toml": 'name = "Bad"\n', "app.py": "def f(:\n"})
    make_daisi(root, "two", {"a.py": "def a():\n    pass\n", "b.py": "def b():\n    pass\n"})
    make_daisi(root, "needs", {"app.py": "def g():\n    pass\n", "requirements.txt": "nopkg==1\n"})
    store = tmp_path / "store"
    args = ["--index-url", silent_index, "--isolation", "none"]
    with LocalRuntime(root, store=store, workers=0, extra_args=args) as rt:
        lines = rt.logs().splitlines()
    start = lines.index(f"daisi runtime serving {root.resolve()} at {rt.url}")
    summary = lines[start : start + 10]
    assert summary.pop(3).startswith("  server     uvicorn, "), summary
    assert summary[1:5] == [
        f"  store      {store.resolve()}",
        "  isolation  none",
        "  Daisies    4: 1 loaded, 1 building, 2 broken",
        "    loaded    local/good: hi, ho",
    ]
    assert summary[5] == "    building  local/needs: g"
    assert summary[6].startswith("    broken    local/Bad: SyntaxError in app.py, line 1")
    assert re.match(r"    broken    local/two: .*a\.py.*b\.py", summary[7]), summary[7]


def test_the_summary_names_the_sandbox_in_force(tmp_path: Path) -> None:
    root = tmp_path / "daisies"
    make_daisi(root, "good", {"app.py": "def hi():\n    return 1\n"})
    with LocalRuntime(root, workers=0, extra_args=["--isolation", "auto"]) as rt:
        logs = rt.logs()
    assert re.search(r"^  isolation  (sandbox \(bubblewrap .*\)|none)$", logs, re.M), logs


def test_an_empty_folder_says_so(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with LocalRuntime(tmp_path / "empty", workers=0) as rt:
        assert "  Daisies    none found" in rt.logs()


def test_the_default_log_level_keeps_the_console_quiet_and_info_adds_the_access_log(
    tmp_path: Path,
) -> None:
    make_daisi(tmp_path / "d", "good", {"app.py": "def hi():\n    return 1\n"})
    with LocalRuntime(tmp_path / "d", workers=0) as quiet:
        # uvicorn writes the access line when the reply starts: once the reply is here,
        # the line would be in the log file.
        assert httpx.get(quiet.api + "/capabilities").status_code == 200
        assert ACCESS_LINE not in quiet.logs()
        assert "Application startup complete" not in quiet.logs()
        assert "daisi runtime serving" in quiet.logs()  # the summary, at every level
    with LocalRuntime(tmp_path / "d", workers=0, extra_args=["--log-level", "info"]) as loud:
        assert httpx.get(loud.api + "/capabilities").status_code == 200
        assert ACCESS_LINE in loud.logs()
        assert "daisi runtime serving" in loud.logs()


def test_log_level_error_hides_the_runtime_s_warnings(tmp_path: Path) -> None:
    make_daisi(
        tmp_path / "d", "greedy", {"daisi.toml": "workers = 5\n", "app.py": "def f(): pass\n"}
    )
    args = ["--max-workers", "1"]
    with LocalRuntime(tmp_path / "d", workers=0, extra_args=args) as warned:
        assert "WARNING:  Daisi local/greedy asks for 5 workers; starting 1" in warned.logs()
    with LocalRuntime(tmp_path / "d", workers=0, extra_args=[*args, "--log-level", "error"]) as rt:
        assert "asks for 5 workers" not in rt.logs()
        assert "daisi runtime serving" in rt.logs()


def test_log_level_choices() -> None:
    assert settings_of(["."]).server["log_level"] == "warning"
    assert settings_of([".", "--log-level", "DEBUG"]).server["log_level"] == "debug"
    with pytest.raises(click.BadParameter, match="'loud' is not one of"):
        settings_of([".", "--log-level", "loud"])
