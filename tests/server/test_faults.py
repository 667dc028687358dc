"""Faults over raw HTTP (README "Guarantees"): crashes, limits, broken Daisies, bad pickles.

One runtime (with a 300 MB memory limit per execution) serves Daisies written into a
temporary folder by the module fixture. Each fault must fail its own execution with a
clear error type and leave the server (and the next call) working.
"""

from __future__ import annotations

import base64
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dill
import httpx
import pytest
from tests.support.v1_calls import call, submit, wait

from daisi_async.testing import LocalRuntime

CRASHER = '''
"""Endpoints that misbehave in every way a worker can."""

import os
import signal
import sys
import time

import helper  # a sibling module of the entry file

RAN_MAIN = False


def ok(x: int = 1) -> int:
    return x + 1


def crash() -> None:
    os._exit(3)


def segfault() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def pid() -> list[int]:
    # Names the worker: in the sandbox each worker has a PID namespace of its own.
    return [os.stat("/proc/self/ns/pid").st_ino, os.getpid()]


def slow(seconds: float = 30) -> float:
    print("sleeping", flush=True)
    time.sleep(seconds)
    return seconds


def hog(megabytes: int = 600) -> int:
    block = bytearray(megabytes * 2**20)
    for i in range(0, len(block), 4096):  # touch every page
        block[i] = 1
    time.sleep(5)
    return len(block)


def gen():
    return (i for i in range(3))


def kind(value):
    return type(value).__name__


def environment() -> dict:
    return {
        "cwd": os.getcwd(),
        "base_url": os.environ.get("DAISI_BASE_URL", ""),
        "path0": sys.path[0],
        "helper": helper.twice(21),
        "main_ran": RAN_MAIN,
    }


if __name__ == "__main__":
    RAN_MAIN = True
    raise SystemExit("the main block must not run")
'''

HELPER = """
def twice(x):
    return 2 * x
"""


def _write(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))


@pytest.fixture(scope="module")
def daisies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fault-daisies")
    _write(
        root / "crasher",
        {"app.py": CRASHER, "helper.py": HELPER, "daisi.toml": 'name = "Crasher"\n'},
    )
    _write(
        root / "slowpoke",
        {
            "app.py": "import time\n\ndef nap(seconds: float = 10):\n"
            "    time.sleep(seconds)\n    return seconds\n",
            "daisi.toml": 'name = "Slowpoke"\ntimeout = 1\n',
        },
    )
    _write(
        root / "import-error",
        {
            "app.py": "def compute(x=1):\n    return x\n\n"
            "raise RuntimeError('exploded while importing')\n",
            "daisi.toml": 'name = "Import Error"\n',
        },
    )
    _write(
        root / "syntax-error",
        {
            "app.py": "def compute(x=1):\n    return x +\n",
            "daisi.toml": 'name = "Syntax Error"\n',
        },
    )
    _write(
        root / "needs-reqs",
        {
            # A missing requirement alone breaks nothing: the failing import does.
            "app.py": "import surely_not_installed_pkg_4f2a\n\ndef compute(x=1):\n    return x\n",
            "requirements.txt": "numpy\nsurely_not_installed_pkg_4f2a>=1.0\n",
            "daisi.toml": 'name = "Needs Reqs"\n',
        },
    )
    return root


@pytest.fixture(scope="module")
def runtime(daisies: Path) -> Iterator[LocalRuntime]:
    # --shared-env: "Needs Reqs" is broken by its import, not by an environment build.
    with LocalRuntime(daisies, extra_args=["--memory-limit", "300MB", "--shared-env"]) as rt:
        yield rt


@pytest.fixture(scope="module")
def listing(client: httpx.Client) -> dict[str, dict[str, Any]]:
    """The Daisies once the imports begun at startup (in the background) have ended."""
    deadline = time.monotonic() + 60
    while True:
        r = client.get("/v1/daisies")
        assert r.status_code == 200, r.text
        daisies = {d["name"]: d for d in r.json()["daisies"]}
        if all(d["state"] != "starting" for d in daisies.values()):
            return daisies
        assert time.monotonic() < deadline, daisies
        time.sleep(0.05)


@pytest.fixture(scope="module")
def crasher(listing: dict[str, dict[str, Any]]) -> str:
    return str(listing["Crasher"]["id"])


def value(execution: dict[str, Any]) -> Any:
    assert execution["status"] == "FINISHED", execution
    assert execution["result"]["encoding"] == "json", execution
    return execution["result"]["value"]


def assert_serving(client: httpx.Client, crasher: str) -> None:
    """The server answers and the same Daisi runs the next call."""
    assert value(call(client, crasher, "ok", x=41)) == 42


# -- worker crashes ----------------------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "how"), [("crash", "exit code 3"), ("segfault", "SIGSEGV")])
def test_worker_crash_fails_execution_and_server_survives(
    client: httpx.Client, runtime: LocalRuntime, crasher: str, endpoint: str, how: str
) -> None:
    before = value(call(client, crasher, "pid"))
    ex = call(client, crasher, endpoint)
    assert ex["status"] == "FAILED"
    assert ex["error"]["type"] == "daisi.WorkerCrashed"
    assert "died" in ex["error"]["message"] and how in ex["error"]["message"]
    assert runtime.process is not None and runtime.process.poll() is None
    assert_serving(client, crasher)
    assert value(call(client, crasher, "pid")) != before  # a new worker took over
    # The legacy face reports it as FAILED with the message as the traceback text.
    legacy = client.get(
        f"/pebbles/{crasher}/executions/{ex['id']}/results", params={"download": "false"}
    ).json()
    assert legacy["status"] == "FAILED"
    assert "daisi.WorkerCrashed" in legacy["results"]


def test_cancel_running_execution_replaces_worker(client: httpx.Client, crasher: str) -> None:
    before = value(call(client, crasher, "pid"))
    eid = submit(client, crasher, "slow", seconds=30)
    deadline = time.monotonic() + 10
    while client.get(f"/v1/executions/{eid}").json()["status"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    t0 = time.monotonic()
    r = client.post(f"/v1/executions/{eid}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "CANCELLED"
    ex = wait(client, eid)
    assert ex["status"] == "CANCELLED"
    assert ex["error"]["type"] == "daisi.Cancelled"
    assert value(call(client, crasher, "ok", x=1)) == 2
    assert time.monotonic() - t0 < 10  # not waiting for the 30 s sleep
    assert value(call(client, crasher, "pid")) != before
    # Cancelling again is idempotent and keeps the status.
    assert client.post(f"/v1/executions/{eid}/cancel").json()["status"] == "CANCELLED"


# -- limits ------------------------------------------------------------------------------


def test_time_limit(client: httpx.Client, listing: dict[str, dict[str, Any]]) -> None:
    did = listing["Slowpoke"]["id"]
    t0 = time.monotonic()
    ex = call(client, did, "nap", seconds=10)
    elapsed = time.monotonic() - t0
    assert ex["status"] == "FAILED"
    assert ex["error"]["type"] == "daisi.TimeLimitExceeded"
    assert "time limit of 1 s" in ex["error"]["message"]
    assert elapsed < 3.5
    assert value(call(client, did, "nap", seconds=0.01)) == 0.01  # replaced worker runs


def test_memory_limit(client: httpx.Client, crasher: str) -> None:
    t0 = time.monotonic()
    ex = call(client, crasher, "hog", megabytes=600)
    assert ex["status"] == "FAILED", ex
    assert ex["error"]["type"] == "daisi.MemoryLimitExceeded"
    assert "300 MiB" in ex["error"]["message"]
    assert time.monotonic() - t0 < 5  # killed, not waited for
    assert_serving(client, crasher)


# -- broken Daisies ----------------------------------------------------------------------


def test_broken_daisies_are_listed_with_their_error(
    listing: dict[str, dict[str, Any]],
) -> None:
    assert listing["Crasher"]["broken"] is None
    assert listing["Slowpoke"]["broken"] is None
    imp = listing["Import Error"]["broken"]
    assert imp and "RuntimeError" in imp and "exploded while importing" in imp
    assert "app.py" in imp  # the import traceback
    syn = listing["Syntax Error"]["broken"]
    assert syn and "SyntaxError" in syn and "app.py" in syn
    req = listing["Needs Reqs"]["broken"]
    assert req and "No module named 'surely_not_installed_pkg_4f2a'" in req
    assert "numpy" not in req  # installed requirements are not reported
    assert listing["Needs Reqs"]["missing_requirements"] == ["surely_not_installed_pkg_4f2a"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Import Error", "exploded while importing"),
        ("Syntax Error", "SyntaxError"),
        ("Needs Reqs", "surely_not_installed_pkg_4f2a"),
    ],
)
def test_calling_a_broken_daisi_gives_its_error(
    client: httpx.Client,
    listing: dict[str, dict[str, Any]],
    crasher: str,
    name: str,
    expected: str,
) -> None:
    did = listing[name]["id"]
    r = client.post(f"/v1/daisies/{did}/executions", json={"endpoint": "compute", "arguments": {}})
    if r.status_code == 201:
        ex = wait(client, r.json()["id"])
        assert ex["status"] == "FAILED"
        assert ex["error"]["type"] == "daisi.DaisiBroken"
        assert expected in ex["error"]["traceback"]
    else:
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "daisi_broken"
        assert expected in r.json()["error"]["message"]
    # The legacy route says so too, and the other Daisies are unaffected.
    r = client.post(f"/pebbles/{did}/executions/compute", json={})
    if r.status_code == 201:
        res = client.get(
            f"/pebbles/{did}/executions/{r.json()['id']}/results", params={"download": "false"}
        )
        assert expected in res.text
    else:
        assert r.status_code == 409 and expected in r.text
    assert_serving(client, crasher)


# -- arguments and results ---------------------------------------------------------------


def test_argument_the_worker_cannot_unpickle(
    client: httpx.Client, crasher: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "only_the_test_has_me.py").write_text(
        "class Secret:\n    def __init__(self):\n        self.x = 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import only_the_test_has_me  # type: ignore[import-not-found]

    try:
        data = dill.dumps(only_the_test_has_me.Secret(), byref=True)
    finally:
        sys.modules.pop("only_the_test_has_me", None)
    r = client.post("/v1/blobs", content=data, headers={"content-type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    body = {"endpoint": "kind", "arguments": {"value": {"blob": key}}}
    r = client.post(f"/v1/daisies/{crasher}/executions", params={"wait": 30}, json=body)
    assert r.status_code == 201, r.text
    ex = wait(client, r.json()["id"])
    assert ex["status"] == "FAILED"
    assert ex["error"]["type"] == "daisi.ArgumentError"
    assert "'value'" in ex["error"]["message"]
    assert "only_the_test_has_me" in ex["error"]["message"]
    # The same bytes through the legacy pickle route fail the same way.
    key = client.post("/pebbles/pickle", json={"data": base64.b64encode(data).decode()}).text
    r = client.post(f"/pebbles/{crasher}/executions/kind", json={"value": f"lookup:{key}"})
    assert r.status_code == 201, r.text
    ex = wait(client, r.json()["id"])
    assert ex["error"]["type"] == "daisi.ArgumentError"
    assert "'value'" in ex["error"]["message"]
    assert_serving(client, crasher)


def test_unserializable_result(client: httpx.Client, crasher: str) -> None:
    ex = call(client, crasher, "gen")
    assert ex["status"] == "FAILED"
    assert ex["error"]["type"] == "daisi.ResultError"
    assert "generator" in ex["error"]["message"]
    assert_serving(client, crasher)


def test_worker_environment(client: httpx.Client, runtime: LocalRuntime, crasher: str) -> None:
    folder = str((runtime.path / "crasher").resolve())
    env = value(call(client, crasher, "environment"))
    assert env["cwd"] == folder
    assert env["path0"] == folder
    assert env["helper"] == 42  # the sibling module imported
    assert env["base_url"] == runtime.url
    assert env["main_ran"] is False
