"""Durability across server restarts (README "Guarantees"), with one store folder.

Finished executions, their logs, results and uploaded blobs survive a restart; an
execution running when the server is killed is FAILED "interrupted by a server
restart"; queued ones run after the restart; workers do not outlive their server.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dill
import httpx
import numpy as np
import pytest
from tests.server.conftest import EXAMPLES

from daisi_async.testing import LocalRuntime

WORKER_MODULE = "daisi_async.server.workers.program"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    root = tmp_path_factory.mktemp("restart-daisies")
    for name in ("add-two-numbers", "live-logging", "daisi-serialize", "always-fails"):
        shutil.copytree(EXAMPLES / name, root / name)
    (root / "napper").mkdir()
    (root / "napper" / "app.py").write_text(
        "import time\n\n\ndef nap(seconds: float = 30):\n"
        "    time.sleep(seconds)\n    return seconds\n"
    )
    store = tmp_path_factory.mktemp("restart-store")
    with LocalRuntime(root, store=store) as rt:
        yield rt


@pytest.fixture(scope="module")
def ids(runtime: LocalRuntime) -> dict[str, str]:
    daisies = httpx.get(runtime.api + "/v1/daisies").json()["daisies"]
    return {d["name"]: d["id"] for d in daisies}


def client(rt: LocalRuntime) -> httpx.Client:
    return httpx.Client(base_url=rt.api, timeout=30)


def submit(c: httpx.Client, did: str, endpoint: str, args: dict[str, Any]) -> str:
    r = c.post(f"/v1/daisies/{did}/executions", json={"endpoint": endpoint, "arguments": args})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def values(**kwargs: Any) -> dict[str, dict[str, Any]]:
    return {k: {"value": v} for k, v in kwargs.items()}


def wait(c: httpx.Client, eid: str, timeout: float = 30) -> dict[str, Any]:
    r = c.get(f"/v1/executions/{eid}", params={"wait": timeout})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def wait_status(c: httpx.Client, eid: str, status: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while c.get(f"/v1/executions/{eid}").json()["status"] != status:
        assert time.monotonic() < deadline, f"{eid} never became {status}"
        time.sleep(0.02)


def worker_pids(folder: Path) -> list[int]:
    """Worker processes (of any server) serving a Daisi under ``folder``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if WORKER_MODULE in cmd and any(arg.startswith(str(folder)) for arg in cmd):
            pids.append(int(entry))
    return pids


def test_finished_work_survives_a_restart(runtime: LocalRuntime, ids: dict[str, str]) -> None:
    add, serialize = ids["Add Two Numbers"], ids["Daisi Serialize"]
    live, fails = ids["Live Logging"], ids["Always Fails"]
    blob = dill.dumps({"numbers": np.arange(5), "text": "kept"}, protocol=5)
    with client(runtime) as c:
        e_add = submit(c, add, "compute", values(firstNumber=5, secondNumber=6))
        e_live = submit(c, live, "live_log_test", values(firstNumber=1, secondNumber=2, delay=0))
        e_big = submit(c, serialize, "make_stack", values(nx=200, ny=200, layers=10))
        e_fail = submit(c, fails, "divide", {})
        key_v1 = c.post("/v1/blobs", content=blob).json()["key"]
        key_legacy = c.post("/pebbles/pickle", json={"data": base64.b64encode(blob).decode()}).text
        before = {eid: wait(c, eid) for eid in (e_add, e_live, e_big, e_fail)}
        logs_before = c.get(f"/v1/executions/{e_live}/logs").json()["lines"]
        big_before = c.get(f"/v1/executions/{e_big}/result").content
    assert before[e_add]["status"] == "FINISHED"
    assert before[e_fail]["status"] == "FAILED"
    assert len(big_before) > 3_000_000  # a blob file, not a database row
    assert [line["line"] for line in logs_before][-1] == "Done: 1 + 2 = 3"

    runtime.restart()

    with client(runtime) as c:
        for eid, old in before.items():
            new = c.get(f"/v1/executions/{eid}", params={"result": 1}).json()
            for field in ("status", "created_at", "started_at", "finished_at", "error"):
                assert new[field] == old[field], field
        assert c.get(f"/v1/executions/{e_add}/result").json() == 11
        # Legacy results too (what pydaisi reads).
        legacy = c.get(
            f"/pebbles/{add}/executions/{e_add}/results", params={"download": "true"}
        ).json()
        assert legacy["status"] == "FINISHED"
        assert dill.loads(base64.b64decode(legacy["results"])) == 11
        assert c.get(f"/v1/executions/{e_live}/logs").json()["lines"] == logs_before
        assert c.get(f"/pebbles/{live}/executions/{e_live}/logs").json() == [
            line["line"] for line in logs_before
        ]
        assert c.get(f"/v1/executions/{e_big}/result").content == big_before
        stack = dill.loads(big_before)
        assert stack.nb_layers == 10 and stack.maps[0].shape == (200, 200)
        fail = c.get(f"/pebbles/{fails}/executions/{e_fail}/results", params={"download": "true"})
        err = dill.loads(base64.b64decode(fail.json()["results"]))
        assert err["label"] == "ERROR" and "ZeroDivisionError" in err["data"]
        for key in (key_v1, key_legacy):
            assert c.get(f"/v1/blobs/{key}").content == blob
        # Stored objects and results are still usable as arguments after the restart.
        r = c.post(
            f"/pebbles/{serialize}/executions/compute",
            json={"map_stack": f"lookup:{e_big}", "map": f"lookup:{key_legacy}"},
        )
        assert r.status_code == 201, r.text
        # ``map`` is a dict here, so the Daisi fails on ``.shape``: the lookup resolved.
        ex = wait(c, r.json()["id"])
        assert ex["status"] == "FAILED" and "shape" in ex["error"]["message"]


def test_kill_while_running_and_queued(runtime: LocalRuntime, ids: dict[str, str]) -> None:
    live = ids["Live Logging"]
    folder = runtime.path
    with client(runtime) as c:
        assert c.get(f"/v1/daisies/{live}/workers").json()["number"] == 1
        long = submit(c, live, "live_log_test", values(firstNumber=1, secondNumber=1, delay=10))
        quick = [
            submit(c, live, "live_log_test", values(firstNumber=i, secondNumber=10, delay=0))
            for i in range(2)
        ]
        wait_status(c, long, "RUNNING")
        deadline = time.monotonic() + 5
        while not c.get(f"/v1/executions/{long}/logs").json()["lines"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for eid in quick:
            assert c.get(f"/v1/executions/{eid}").json()["status"] == "QUEUED"
    assert worker_pids(folder)

    runtime.kill()
    # Workers notice that their server is gone and exit (a busy one at its next print).
    deadline = time.monotonic() + 5
    while worker_pids(folder):
        assert time.monotonic() < deadline, f"orphan workers: {worker_pids(folder)}"
        time.sleep(0.1)

    runtime.start()
    with client(runtime) as c:
        ex = c.get(f"/v1/executions/{long}").json()
        assert ex["status"] == "FAILED"
        assert ex["error"]["type"] == "daisi.Interrupted"
        assert ex["error"]["message"] == "interrupted by a server restart"
        lines = c.get(f"/v1/executions/{long}/logs").json()["lines"]
        assert lines and "adding 1 and 1 over 10 seconds" in lines[0]["line"]
        legacy = c.get(f"/pebbles/{live}/executions/{long}/status").json()
        assert legacy == "FAILED"
        for i, eid in enumerate(quick):
            done = wait(c, eid)
            assert done["status"] == "FINISHED", done
            assert done["result"]["value"] == i + 10
        # The event stream of the interrupted execution ends with its FAILED status.
        with c.stream("GET", f"/v1/executions/{long}/events") as r:
            data = [line for line in r.iter_lines() if line.startswith("data:")]
        assert json.loads(data[-1][5:])["status"] == "FAILED"


def test_silent_busy_worker_exits_with_its_server(
    runtime: LocalRuntime, ids: dict[str, str]
) -> None:
    folder = runtime.path / "napper"
    with client(runtime) as c:
        eid = submit(c, ids["napper"], "nap", values(seconds=30))
        wait_status(c, eid, "RUNNING")
    runtime.kill()
    try:
        deadline = time.monotonic() + 3
        while worker_pids(folder):
            assert time.monotonic() < deadline, f"orphan workers: {worker_pids(folder)}"
            time.sleep(0.1)
    finally:
        for pid in worker_pids(folder):  # the orphans this test made
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        runtime.start()
