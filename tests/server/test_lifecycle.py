"""Workers live as on the platform, over raw HTTP against real ``daisi serve`` processes:
started on first use (or kept warm with ``min_workers``), scaled with the queue up to
``max_workers``, stopped when idle, pinned by ``workers.set``; imports have a time
limit, a failed import is retried, what an import prints goes to the Daisi's start
log; ``--reload`` follows edits.

Worker processes are found in ``/proc`` by their command line (the worker program and
``--dir <Daisi folder>``). The runtimes run without the sandbox (``--isolation none``,
:data:`UNSANDBOXED`): some Daisies here count their imports in a file of their own folder,
which is read-only in the sandbox, and a worker is one process; tests/server/test_sandbox.py
runs Daisies in the sandbox.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from tests.support import v1_calls
from tests.support.daisi_folders import make_daisi

from daisi_async.cli.serve import settings_of
from daisi_async.server.registry import load_daisi
from daisi_async.server.workers.process import WORKER_MODULE
from daisi_async.testing import LocalRuntime

UNSANDBOXED = ["--isolation", "none"]
LOCAL = {"Authorization": "token tok-local"}
ALICE = {"Authorization": "token tok-alice"}
TOKENS = {"tok-local": "local", "tok-alice": "alice"}

NAPPER = """
    import os
    import time

    def nap(seconds: float = 1):
        time.sleep(seconds)
        return [os.getpid(), seconds]

    def hi(x: int = 1):
        return x + 1
"""
HANGS = """
    import threading
    threading.Event().wait()

    def hi():
        return "never"
"""
CHATTY = """
    import logging
    import sys

    print("hello from import")
    print("warning at import", file=sys.stderr)
    logging.getLogger("chatty").warning("logged at import")

    def hi():
        print("in call")
        return "hi"
"""
LOUD = """
    for i in range(1, 1101):
        print(f"line {i}")
    print("x" * 20_000)

    def hi():
        return "hi"
"""
READER = """
    import time

    with open("attempts.txt", "a") as f:
        f.write(f"{time.time()}\\n")
    print("reading data.txt")
    with open("data.txt") as f:
        DATA = f.read().strip()

    def read():
        return DATA
"""


def toml(name: str, extra: str = "") -> str:
    return f'name = "{name}"\n{textwrap.dedent(extra)}'


# -- helpers -------------------------------------------------------------------------------


def worker_pids(folder: Path) -> list[int]:
    """Live worker processes (not zombies) serving the Daisi in ``folder``."""
    found = []
    wanted = str(folder.resolve())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace").split("\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if WORKER_MODULE in cmd and wanted in cmd and state not in ("Z", "X"):
            found.append(int(entry))
    return found


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        assert time.monotonic() < deadline, f"not reached in {timeout} s: {what}"
        time.sleep(0.05)


def daisies(client: httpx.Client, headers: dict[str, str] = LOCAL) -> dict[str, dict[str, Any]]:
    r = client.get("/v1/daisies", headers=headers)
    assert r.status_code == 200, r.text
    return {d["name"]: d for d in r.json()["daisies"]}


def daisi(client: httpx.Client, did: str) -> dict[str, Any]:
    r = client.get(f"/v1/daisies/{did}", headers=LOCAL)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


submit = functools.partial(v1_calls.submit, headers=LOCAL)
wait = functools.partial(v1_calls.wait, headers=LOCAL)
call = functools.partial(v1_calls.call, headers=LOCAL)


def status(client: httpx.Client, eid: str) -> str:
    r = client.get(f"/v1/executions/{eid}", headers=LOCAL)
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


def value(execution: dict[str, Any]) -> Any:
    assert execution["status"] == "FINISHED", execution
    return execution["result"]["value"]


def broken_call(execution: dict[str, Any]) -> dict[str, str]:
    """The error of an execution that failed because its Daisi can't run."""
    assert execution["status"] == "FAILED", execution
    error: dict[str, str] = execution["error"]
    assert error["type"] == "daisi.DaisiBroken", error
    return error


# -- the shared runtime ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lifecycle")
    folders: dict[str, dict[str, str]] = {
        "napper": {"app.py": NAPPER, "daisi.toml": toml("Napper", "max_workers = 3")},
        "pair": {"app.py": NAPPER, "daisi.toml": toml("Pair", "max_workers = 2")},
        "warm": {
            "app.py": NAPPER,
            "daisi.toml": toml("Warm", "min_workers = 1\nidle_timeout = 1\n"),
        },
        "brief": {"app.py": NAPPER, "daisi.toml": toml("Brief", "idle_timeout = 1")},
        "pinned": {"app.py": NAPPER, "daisi.toml": toml("Pinned", "idle_timeout = 1")},
        "fixed": {"app.py": NAPPER, "daisi.toml": toml("Fixed", "workers = 2\nidle_timeout = 1")},
        "stuck": {"app.py": HANGS, "daisi.toml": toml("Stuck")},
        "slow": {
            "app.py": "import time\ntime.sleep(3)\n" + textwrap.dedent(NAPPER),
            "daisi.toml": toml("Slow", "import_timeout = 60"),
        },
        "chatty": {"app.py": CHATTY, "daisi.toml": toml("Chatty")},
        "secret": {
            "app.py": CHATTY,
            "daisi.toml": toml("Secret", 'owner = "alice"\npublic = false'),
        },
        "loud": {"app.py": LOUD, "daisi.toml": toml("Loud")},
        "reader": {"app.py": READER, "daisi.toml": toml("Reader")},
        "reader-two": {"app.py": READER, "daisi.toml": toml("Reader Two")},
    }
    for folder, files in folders.items():
        make_daisi(root, folder, files)
    return root


@pytest.fixture(scope="module")
def runtime(tree: Path) -> Iterator[LocalRuntime]:
    args = ["--max-workers", "3", "--import-timeout", "2", *UNSANDBOXED]
    with LocalRuntime(tree, workers=0, tokens=TOKENS, extra_args=args) as rt:
        yield rt


@pytest.fixture(scope="module")
def ids(client: httpx.Client) -> dict[str, str]:
    listed = {**daisies(client), **daisies(client, ALICE)}
    return {name: str(d["id"]) for name, d in listed.items()}


# -- lazy start ------------------------------------------------------------------------------


def test_the_server_is_ready_at_once_whatever_daisies_do_at_import(tmp_path: Path) -> None:
    root = tmp_path / "daisies"
    sleepy = "import time\ntime.sleep(15)\n" + textwrap.dedent(NAPPER)
    make_daisi(root, "sleepy", {"app.py": sleepy, "daisi.toml": toml("Sleepy", "min_workers = 1")})
    make_daisi(root, "hangs", {"app.py": HANGS, "daisi.toml": toml("Hangs", "min_workers = 1")})
    make_daisi(root, "quick", {"app.py": NAPPER, "daisi.toml": toml("Quick")})
    started = time.monotonic()
    with (
        LocalRuntime(
            root,
            workers=0,
            tokens=TOKENS,
            startup_timeout=10,
            extra_args=["--idle-timeout", "1", *UNSANDBOXED],
        ) as rt,
        httpx.Client(base_url=rt.api, timeout=30) as c,
    ):
        listed = daisies(c)
        # Only the min_workers ones started, in the background; nothing waited for them.
        assert {n: (d["state"], d["workers"]) for n, d in listed.items()} == {
            "Sleepy": ("starting", 1),
            "Hangs": ("starting", 1),
            "Quick": ("idle", 0),
        }
        assert worker_pids(root / "quick") == []
        quick = listed["Quick"]["id"]
        assert value(call(c, quick, "hi", x=41)) == 42  # its first call started a worker
        answered = time.monotonic() - started
        assert answered < 10, answered  # (about 1 s here, interpreter start included)
        assert daisi(c, listed["Sleepy"]["id"])["state"] == "starting"  # still importing
        assert daisi(c, listed["Hangs"]["id"])["state"] == "starting"
        assert daisi(c, quick)["state"] == "ready" and len(worker_pids(root / "quick")) == 1
        # --idle-timeout 1: Quick's worker exits; a new call starts another.
        wait_until(lambda: daisi(c, quick)["state"] == "idle", what="Quick idle")
        wait_until(lambda: worker_pids(root / "quick") == [], what="Quick's worker gone")
        assert value(call(c, quick, "hi", x=1)) == 2
    assert "[Sleepy]" not in rt.logs()  # (it never printed)


# -- scaling ---------------------------------------------------------------------------------


def test_calls_scale_out_to_max_workers(client: httpx.Client, ids: dict[str, str]) -> None:
    started = time.monotonic()
    eids = [submit(client, ids["Napper"], "nap", seconds=2) for _ in range(3)]
    runs = [wait(client, eid) for eid in eids]
    elapsed = time.monotonic() - started
    pids = {value(r)[0] for r in runs}
    assert len(pids) == 3  # one execution per worker
    # They ran side by side: each started before any of them finished.
    assert max(r["started_at"] for r in runs) < min(r["finished_at"] for r in runs)
    assert elapsed < 5.5, elapsed  # one after the other: 6 s and more
    assert daisi(client, ids["Napper"])["workers"] == 3


def test_the_queue_never_grows_a_pool_over_max_workers(
    client: httpx.Client, ids: dict[str, str], tree: Path
) -> None:
    eids = [submit(client, ids["Pair"], "nap", seconds=2) for _ in range(3)]
    runs = sorted((wait(client, eid) for eid in eids), key=lambda r: r["started_at"])
    assert len({value(r)[0] for r in runs}) == 2
    # The third waited (QUEUED) until one of the first two was done.
    assert runs[2]["started_at"] >= min(r["finished_at"] for r in runs[:2]) - 0.05
    assert len(worker_pids(tree / "pair")) == 2


def test_idle_workers_stop_down_to_min_workers(
    client: httpx.Client, ids: dict[str, str], tree: Path
) -> None:
    warm, brief = ids["Warm"], ids["Brief"]
    wait_until(lambda: daisi(client, warm)["state"] == "ready", what="Warm warmed up")
    assert len(worker_pids(tree / "warm")) == 1
    runs = [wait(client, e) for e in [submit(client, warm, "nap", seconds=3) for _ in range(2)]]
    assert len({value(r)[0] for r in runs}) == 2  # it grew for the queue
    # idle_timeout = 1: back to min_workers = 1, never fewer.
    wait_until(lambda: len(worker_pids(tree / "warm")) == 1, what="Warm back to 1")
    time.sleep(1.5)
    assert len(worker_pids(tree / "warm")) == 1
    assert daisi(client, warm)["workers"] == 1 and daisi(client, warm)["state"] == "ready"
    # No min_workers: down to none.
    assert value(call(client, brief, "hi")) == 2
    wait_until(lambda: daisi(client, brief)["state"] == "idle", what="Brief idle")
    assert daisi(client, brief)["workers"] == 0 and worker_pids(tree / "brief") == []


def test_workers_set_pins_the_count(client: httpx.Client, ids: dict[str, str], tree: Path) -> None:
    did = ids["Pinned"]
    r = client.put(f"/v1/daisies/{did}/workers", json={"number": 2}, headers=LOCAL)
    assert r.status_code == 200 and r.json() == {"number": 2, "status": "increasing"}, r.text
    wait_until(lambda: len(worker_pids(tree / "pinned")) == 2, what="2 pinned workers")
    assert client.get(f"/daisies/workers/{did}/number").json() == 2
    time.sleep(2)  # over its idle_timeout of 1 s: pinned workers stay
    assert len(worker_pids(tree / "pinned")) == 2
    runs = [wait(client, e) for e in [submit(client, did, "nap", seconds=0.5) for _ in range(3)]]
    assert len({value(r)[0] for r in runs}) == 2  # the queue does not grow a pinned pool
    r = client.post(f"/daisies/workers/{did}", json={"worker_number": 1}, headers=LOCAL)
    assert r.status_code == 200, r.text
    wait_until(lambda: len(worker_pids(tree / "pinned")) == 1, what="pinned down to 1")
    settled = {"number": 1, "status": "ready_to_update"}
    wait_until(lambda: client.get(f"/v1/daisies/{did}/workers").json() == settled, 10)


def test_workers_in_daisi_toml_pin_the_count(
    client: httpx.Client, ids: dict[str, str], tree: Path
) -> None:
    did = ids["Fixed"]
    wait_until(lambda: len(worker_pids(tree / "fixed")) == 2, what="2 workers from startup")
    assert daisi(client, did)["workers"] == 2
    time.sleep(2)  # idle_timeout = 1 does not stop pinned workers
    assert len(worker_pids(tree / "fixed")) == 2


# -- imports ---------------------------------------------------------------------------------


def test_an_import_over_the_time_limit_fails_the_calls_waiting_for_it(
    client: httpx.Client, ids: dict[str, str], tree: Path
) -> None:
    did = ids["Stuck"]
    started = time.monotonic()
    eids = [submit(client, did, "hi") for _ in range(3)]
    for eid in eids:
        error = broken_call(wait(client, eid))
        assert "import time limit of 2 s" in error["message"], error
        assert "--import-timeout" in error["traceback"], error
    assert time.monotonic() - started < 20
    assert worker_pids(tree / "stuck") == []  # the worker was killed
    body = daisi(client, did)
    assert body["state"] == "broken" and "import time limit of 2 s" in body["broken"]
    # import_timeout in daisi.toml wins over the server's: Slow takes 3 s and starts.
    assert value(call(client, ids["Slow"], "hi", x=2)) == 3


def test_a_failed_import_is_retried_by_a_later_call(
    client: httpx.Client, ids: dict[str, str], tree: Path
) -> None:
    did, folder = ids["Reader"], tree / "reader"
    error = broken_call(call(client, did, "read"))
    assert "FileNotFoundError" in error["message"] and "data.txt" in error["traceback"]
    body = daisi(client, did)
    assert body["state"] == "broken" and "FileNotFoundError" in body["broken"]
    # Calls keep failing with the import error, and imports are tried with a backoff.
    calls = 0
    until = time.monotonic() + 2.5
    while time.monotonic() < until:
        assert "FileNotFoundError" in broken_call(call(client, did, "read"))["message"]
        calls += 1
    attempts = [float(t) for t in (folder / "attempts.txt").read_text().split()]
    assert len(attempts) <= 4 < calls, (attempts, calls)  # 1 s, then 2 s between tries
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(attempts)), attempts
    # The data file appears: a later call imports the Daisi, no restart needed.
    (folder / "data.txt").write_text("found it\n")
    wait_until(lambda: call(client, did, "read")["status"] == "FINISHED", 60, "Reader works")
    assert value(call(client, did, "read")) == "found it"
    body = daisi(client, did)
    assert body["state"] == "ready" and body["broken"] is None


def test_workers_set_on_a_broken_daisi_tries_again(
    client: httpx.Client, ids: dict[str, str], tree: Path
) -> None:
    did, folder = ids["Reader Two"], tree / "reader-two"
    broken_call(call(client, did, "read"))
    assert daisi(client, did)["state"] == "broken"
    tried = len((folder / "attempts.txt").read_text().split())
    r = client.put(f"/v1/daisies/{did}/workers", json={"number": 1}, headers=LOCAL)
    assert r.status_code == 200, r.text  # accepted: it tries again at once
    wait_until(lambda: len((folder / "attempts.txt").read_text().split()) > tried, 10, "a try")
    wait_until(lambda: daisi(client, did)["state"] == "broken", 10, "broken again")
    (folder / "data.txt").write_text("second\n")
    r = client.post(f"/daisies/workers/{did}", json={"worker_number": 1}, headers=LOCAL)
    assert r.status_code == 200, r.text
    wait_until(lambda: daisi(client, did)["state"] == "ready", 30, "Reader Two ready")
    assert value(call(client, did, "read")) == "second"


# -- the start log ---------------------------------------------------------------------------


def test_what_an_import_prints_goes_to_the_start_log(
    client: httpx.Client, ids: dict[str, str], runtime: LocalRuntime
) -> None:
    did = ids["Chatty"]
    assert client.get(f"/v1/daisies/{did}/log").json() == {"lines": []}  # not started yet
    ex = call(client, did, "hi")
    assert value(ex) == "hi"
    lines = client.get(f"/v1/daisies/{did}/log").json()["lines"]
    assert [(line["stream"], line["line"]) for line in lines] == [
        ("stdout", "hello from import"),
        ("stderr", "warning at import"),
        ("stderr", "WARNING chatty: logged at import"),
    ]
    assert [line["seq"] for line in lines] == [1, 2, 3]
    r = client.get(f"/v1/daisies/{did}/log", params={"after": 2})
    assert [line["seq"] for line in r.json()["lines"]] == [3]
    # The call's own output is the execution's, not the start log's.
    logs = client.get(f"/v1/executions/{ex['id']}/logs", headers=LOCAL).json()["lines"]
    assert [line["line"] for line in logs] == ["in call"]
    # The console shows it, with the Daisi's name.
    console = runtime.logs()
    assert "[Chatty] hello from import" in console
    assert "[Chatty] WARNING chatty: logged at import" in console
    # A failed import's output is there too.
    call(client, ids["Reader"], "read")
    reader = client.get(f"/v1/daisies/{ids['Reader']}/log").json()["lines"]
    assert ("stdout", "reading data.txt") in [(x["stream"], x["line"]) for x in reader]


def test_the_start_log_is_seen_as_the_daisi_is(client: httpx.Client, ids: dict[str, str]) -> None:
    secret = ids["Secret"]  # alice's, private
    assert value(wait(client, _submit_as(client, secret, ALICE), headers=ALICE)) == "hi"
    for headers in ({}, LOCAL):
        r = client.get(f"/v1/daisies/{secret}/log", headers=headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    r = client.get(f"/v1/daisies/{secret}/log", headers=ALICE)
    assert r.status_code == 200 and r.json()["lines"][0]["line"] == "hello from import"
    missing = "00000000-0000-4000-8000-000000000000"
    r = client.get(f"/v1/daisies/{missing}/log")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_the_start_log_keeps_the_latest_lines(client: httpx.Client, ids: dict[str, str]) -> None:
    did = ids["Loud"]
    assert value(call(client, did, "hi")) == "hi"
    lines = client.get(f"/v1/daisies/{did}/log").json()["lines"]
    assert len(lines) == 1000
    assert (lines[0]["seq"], lines[0]["line"]) == (102, "line 102")
    assert lines[-1]["seq"] == 1101
    assert lines[-1]["line"] == "x" * 10_000 + "... (10000 more characters)"


def _submit_as(client: httpx.Client, did: str, headers: dict[str, str]) -> str:
    r = client.post(f"/v1/daisies/{did}/executions", json={"endpoint": "hi"}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


# -- --reload --------------------------------------------------------------------------------

EDITABLE = """
    import time

    VERSION = {version}

    def version():
        return VERSION

    def slow(seconds: float = 3):
        time.sleep(seconds)
        return VERSION
"""


def test_reload_follows_edits_new_and_removed_daisies(tmp_path: Path) -> None:
    root = tmp_path / "daisies"
    make_daisi(root, "editable", {"app.py": EDITABLE.format(version=1)})
    make_daisi(root, "doomed", {"app.py": NAPPER, "daisi.toml": toml("Doomed", "max_workers = 1")})
    with (
        LocalRuntime(root, workers=0, tokens=TOKENS, extra_args=["--reload", *UNSANDBOXED]) as rt,
        httpx.Client(base_url=rt.api, timeout=30) as c,
    ):
        ids = {name: d["id"] for name, d in daisies(c).items()}
        ed = ids["editable"]
        assert value(call(c, ed, "version")) == 1
        running = submit(c, ed, "slow", seconds=3)
        wait_until(lambda: status(c, running) == "RUNNING")
        (root / "editable" / "app.py").write_text(
            textwrap.dedent(EDITABLE.format(version=2)) + "\n\ndef added():\n    return 'new'\n"
        )
        endpoints = lambda: [e["name"] for e in daisi(c, ed)["endpoints"]]  # noqa: E731
        wait_until(lambda: "added" in endpoints(), 20, "endpoints re-read")
        assert value(call(c, ed, "version")) == 2  # a new worker
        assert value(call(c, ed, "added")) == "new"
        assert value(wait(c, running)) == 1  # the running call finished on the old one
        wait_until(lambda: len(worker_pids(root / "editable")) == 1, 20, "the old worker left")

        # A new Daisi folder appears.
        make_daisi(root, "fresh", {"app.py": NAPPER})
        fresh = wait_until(lambda: daisies(c).get("fresh"), 20, "fresh listed")
        assert value(call(c, fresh["id"], "hi", x=9)) == 10

        # A deleted one disappears; its waiting call fails, its running one finishes.
        doomed = ids["Doomed"]
        busy = submit(c, doomed, "nap", seconds=3)
        wait_until(lambda: status(c, busy) == "RUNNING")
        queued = submit(c, doomed, "nap", seconds=0)
        shutil.rmtree(root / "doomed")
        wait_until(lambda: "Doomed" not in daisies(c), 20, "Doomed gone")
        assert c.get(f"/v1/daisies/{doomed}").status_code == 404
        error = broken_call(wait(c, queued))
        assert "no longer served" in error["message"], error
        assert value(wait(c, busy))[1] == 3
        assert "Daisi local/Doomed removed" in rt.logs()


# -- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("min_workers = -1", "min_workers must be an integer of at least 0"),
        ("max_workers = 0", "max_workers must be a positive integer"),
        ('max_workers = "2"', "max_workers must be a positive integer"),
        ("min_workers = 3\nmax_workers = 2", "min_workers (3) is over max_workers (2)"),
        ("workers = 2\nmax_workers = 3", "set either workers or min_workers/max_workers"),
        ("idle_timeout = 0", "idle_timeout must be a positive number of seconds"),
        ("import_timeout = -5", "import_timeout must be a positive number of seconds"),
        ("import_timeout = true", "import_timeout must be a positive number of seconds"),
    ],
)
def test_invalid_lifecycle_keys_break_the_daisi(tmp_path: Path, text: str, fragment: str) -> None:
    folder = make_daisi(tmp_path, "d", {"daisi.toml": text, "app.py": "def f(): pass\n"})
    spec = load_daisi(folder)
    assert spec.error is not None and fragment in spec.error, spec.error


def test_lifecycle_keys_are_read(tmp_path: Path) -> None:
    text = "min_workers = 1\nmax_workers = 4\nidle_timeout = 30\nimport_timeout = 120\n"
    spec = load_daisi(make_daisi(tmp_path, "d", {"daisi.toml": text, "app.py": "def f(): pass\n"}))
    assert spec.error is None
    assert (spec.min_workers, spec.max_workers, spec.workers) == (1, 4, None)
    assert (spec.idle_timeout, spec.import_timeout) == (30.0, 120.0)


def test_serve_lifecycle_options() -> None:
    c = settings_of(["."]).config
    assert (c.workers, c.idle_timeout, c.import_timeout, c.reload) == (
        0,
        600.0,
        60.0,
        False,
    )
    c = settings_of(
        [".", "--workers", "2", "--idle-timeout", "5", "--import-timeout", "9", "--reload"]
    ).config
    assert (c.workers, c.idle_timeout, c.import_timeout, c.reload) == (2, 5, 9, True)
    for bad in (["--workers", "-1"], ["--idle-timeout", "0"], ["--import-timeout", "inf"]):
        with pytest.raises(click.BadParameter):
            settings_of([".", *bad])
