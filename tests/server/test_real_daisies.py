"""A folder of Daisies shaped like the real ones (public repositories of the platform),
served as it is, with no manual step, and called with both faces and the original
pydaisi client:

* a Daisi whose folder also holds a client script (``run.py``) and a data file it reads
  relative to its folder, and a secret it reads at import;
* two Daisies that pin conflicting versions of one package, one of them with a
  ``requirements.txt`` in UTF-16 (what PowerShell's ``pip freeze >`` writes), the other
  in UTF-8 with a byte-order mark;
* a Daisi whose import takes seconds (the others answer meanwhile);
* a Daisi whose import fails (a data file missing) and then recovers with no restart;
* settings from ``[env]``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.daisi_folders import make_daisi
from tests.support.wheels import toy_links, uv_cache

from daisi_async import AsyncDaisi, Daisi, DaisiExecutionError
from daisi_async.testing import LocalRuntime

__all__ = ["toy_links", "uv_cache"]  # session fixtures, used by name

SECRET = "nasa-key-0c1d"

NASA_MODEL = """
import csv
import os
import pathlib

KEY = os.environ["MY_NASA_KEY"]  # read at import, as the real one does
ROWS = list(csv.DictReader(open("planets.csv")))  # relative to the Daisi's folder


def planet(name: str) -> dict:
    \"\"\"The row of ``name`` in planets.csv.\"\"\"
    return next(r for r in ROWS if r["name"] == name)


def key_length() -> int:
    return len(KEY)


def greeting() -> str:
    return os.environ.get("GREETING", "")
"""

NASA_CLIENT = """
from pydaisi import Daisi

d = Daisi("NASA Planets")
print(d.planet(name="Mars").value)
"""

TOY = """
import toypkg


def version() -> str:
    return toypkg.VERSION
"""

SLOW = """
import time

time.sleep(4)


def ping() -> str:
    return "pong"
"""

FLAKY = """
import pathlib

WORD = pathlib.Path("word.txt").read_text().strip()  # missing at first


def word() -> str:
    return WORD
"""


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, toy_links: Path, uv_cache: dict[str, str]
) -> Iterator[tuple[LocalRuntime, Path]]:
    root = tmp_path_factory.mktemp("real") / "daisies"
    make_daisi(
        root,
        "nasa-planets",
        {
            "daisi.toml": 'name = "NASA Planets"\n[env]\nGREETING = "hello from daisi.toml"\n',
            "model.py": NASA_MODEL,
            "run.py": NASA_CLIENT,
            "planets.csv": "name,moons\nMars,2\nVenus,0\n",
            "README.md": "# NASA Planets\n",
        },
    )
    make_daisi(
        root,
        "toy-one",
        {"app.py": TOY, "requirements.txt": "toypkg==1.0\r\n".encode("utf-16")},
    )
    make_daisi(
        root,
        "toy-two",
        {"main.py": TOY, "requirements.txt": "\ufefftoypkg==2.0\n".encode()},
    )
    make_daisi(root, "slow-import", {"app.py": SLOW})
    make_daisi(root, "flaky-import", {"app.py": FLAKY})
    secrets = tmp_path_factory.mktemp("secrets") / "secrets.toml"
    secrets.write_text(f'["NASA Planets"]\nMY_NASA_KEY = "{SECRET}"\n')
    rt = LocalRuntime(
        root,
        workers=0,
        extra_args=["--find-links", str(toy_links), "--offline", "--secrets", str(secrets)],
        env=uv_cache,
    )
    started = time.monotonic()
    with rt:
        ready = time.monotonic() - started
        assert ready < 30, ready  # a sanity bound: the slow import does not hold startup
        yield rt, root


def test_the_model_beside_its_client_script_reads_its_files_and_secret(
    served: tuple[LocalRuntime, Path],
) -> None:
    rt, _ = served
    with Daisi("NASA Planets", base_url=rt.url) as d:
        assert d.planet(name="Mars").value == {"name": "Mars", "moons": "2"}
        assert d.key_length().value == len(SECRET)
        assert d.greeting().value == "hello from daisi.toml"
        assert "run" not in d.endpoints  # the client script is not the Daisi

    async def with_async() -> Any:
        async with AsyncDaisi("NASA Planets", base_url=rt.url) as d:
            return await d.planet(name="Venus")

    assert asyncio.run(with_async()) == {"name": "Venus", "moons": "0"}
    # The secret is never shown by the runtime.
    listing = httpx.get(rt.api + "/v1/daisies", timeout=30).text
    assert SECRET not in listing and SECRET not in rt.logs()


def test_the_original_pydaisi_client_gets_the_same_results(
    served: tuple[LocalRuntime, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    rt, _ = served
    pydaisi = pytest.importorskip("pydaisi")
    monkeypatch.setenv("DAISI_BASE_URL", rt.url)
    d = pydaisi.Daisi("NASA Planets")
    assert d.planet(name="Mars").value == {"name": "Mars", "moons": "2"}
    assert pydaisi.Daisi("toy-two").version().value == "2.0"


def test_conflicting_pins_in_utf16_and_bom_requirements_both_run(
    served: tuple[LocalRuntime, Path],
) -> None:
    rt, _ = served
    with Daisi("toy-one", base_url=rt.url) as one, Daisi("toy-two", base_url=rt.url) as two:
        assert one.version().value == "1.0"
        assert two.version().value == "2.0"


def test_a_slow_import_holds_only_its_own_daisi(served: tuple[LocalRuntime, Path]) -> None:
    rt, _ = served
    with Daisi("slow-import", base_url=rt.url) as slow, Daisi("toy-two", base_url=rt.url) as two:
        pending = slow.ping()
        pending.start()
        t0 = time.monotonic()
        assert two.version().value == "2.0"  # answered while the slow one imports
        fast = time.monotonic() - t0
        assert pending.value == "pong"
        assert fast < 30, fast


def test_an_import_that_fails_recovers_without_a_restart(
    served: tuple[LocalRuntime, Path],
) -> None:
    rt, root = served
    with Daisi("flaky-import", base_url=rt.url) as d:
        with pytest.raises(DaisiExecutionError) as info:
            _ = d.word().value
        assert "word.txt" in str(info.value)
        (root / "flaky-import" / "word.txt").write_text("back\n")
        deadline = time.monotonic() + 90  # a failed import is retried after a backoff
        while True:
            try:
                assert d.word().value == "back"
                break
            except DaisiExecutionError:
                assert time.monotonic() < deadline, "the import never recovered"
                time.sleep(0.5)
    assert os.path.exists(root / "flaky-import" / "word.txt")
