"""Scenarios 6, 7 and 12 of ``run.py``: the workers' lifecycle, each on runtimes of its own.

6. Cold start: the first call of a fresh small Daisi (its worker starts for it), p50
   over several Daisies, beside the next call on the now warm worker.
7. A runtime serving 40 small Daisies: time to ready (``LocalRuntime.start``: the
   server process started until it answers) and the resident memory of the server and
   its workers while idle; by default (workers start on first use) beside
   ``--workers 1`` (one warm worker per Daisi, the behaviour before lazy starts).
12. The memory of one idle warm worker of a trivial Daisi (RSS, USS, PSS).
"""

from __future__ import annotations

import os
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from daisi_async.server.workers import proctree
from daisi_async.testing import LocalRuntime

SMALL = """
    import json


    def compute(firstNumber: int = 1, secondNumber: int = 2) -> int:
        return int(json.loads(json.dumps(firstNumber + secondNumber)))
"""
BODY = {"endpoint": "compute", "arguments": {"firstNumber": {"value": 1}}}


def _write(root: Path, n: int) -> None:
    for i in range(n):
        folder = root / f"small-{i:02d}"
        folder.mkdir(parents=True)
        (folder / "app.py").write_text(textwrap.dedent(SMALL))


def _call(http: httpx.Client, did: str) -> float:
    t0 = time.perf_counter()
    r = http.post(f"/v1/daisies/{did}/executions", params={"wait": 60}, json=BODY)
    elapsed = time.perf_counter() - t0
    if r.status_code != 201 or r.json()["result"]["value"] != 3:
        raise RuntimeError(f"the call failed: {r.status_code} {r.text}")
    return elapsed


def scenario_cold_start(daisies: int) -> dict[str, Any]:
    """The first and the second call of each of ``daisies`` fresh Daisies, one at a time."""
    with tempfile.TemporaryDirectory(prefix="daisi-bench-cold-") as tmp:
        _write(Path(tmp), daisies)
        with LocalRuntime(tmp, workers=0) as rt, httpx.Client(base_url=rt.api, timeout=90) as http:
            ids = [d["id"] for d in http.get("/v1/daisies").json()["daisies"]]
            first, second = [], []
            for did in ids:
                first.append(_call(http, did))
                second.append(_call(http, did))
    return {"first": first, "second": second}


def _tree_rss(rt: LocalRuntime) -> int:
    assert rt.process is not None
    return proctree.tree_rss(rt.process.pid)


def _states(http: httpx.Client) -> list[str]:
    return [d["state"] for d in http.get("/v1/daisies").json()["daisies"]]


def _serve_many(root: Path, workers: int) -> dict[str, Any]:
    rt = LocalRuntime(root, workers=workers, startup_timeout=300)
    t0 = time.perf_counter()
    with rt, httpx.Client(base_url=rt.api, timeout=60) as http:
        ready = time.perf_counter() - t0
        while any(s == "starting" for s in _states(http)):  # (--workers 1: the imports)
            time.sleep(0.05)
        warm = time.perf_counter() - t0
        time.sleep(1.0)  # settle
        rss = _tree_rss(rt)
        states = _states(http)
    return {
        "workers": workers,
        "ready_s": ready,
        "all_warm_s": warm,
        "rss_bytes": rss,
        "ready_daisies": states.count("ready"),
        "daisies": len(states),
    }


def scenario_many(daisies: int) -> list[dict[str, Any]]:
    """Start a runtime serving ``daisies`` small Daisies, lazily and with ``--workers 1``."""
    with tempfile.TemporaryDirectory(prefix="daisi-bench-many-") as tmp:
        _write(Path(tmp), daisies)
        return [_serve_many(Path(tmp), workers) for workers in (0, 1)]


WORKER_PROGRAM = "daisi_async.server.workers.program"


def worker_memory(server_pid: int) -> list[dict[str, int]]:
    """RSS, USS and PSS (bytes) of each worker process below the server.

    The worker program's own processes only: a sandbox's ``bwrap`` parents are
    counted apart (``wrapper_rss``).
    """
    out: list[dict[str, int]] = []
    wrappers = 0
    for proc in psutil.Process(server_pid).children(recursive=True):
        try:
            cmd = proc.cmdline()
            mem = proc.memory_full_info()
        except psutil.Error:
            continue
        if cmd and os.path.basename(cmd[0]) == "bwrap":
            wrappers += mem.rss
        elif WORKER_PROGRAM in cmd:
            out.append({"pid": proc.pid, "rss": mem.rss, "uss": mem.uss, "pss": mem.pss})
    for row in out:
        row["wrapper_rss"] = wrappers // max(len(out), 1)
    return out


def scenario_idle_worker() -> dict[str, Any]:
    """The memory of an idle warm worker of a trivial Daisi (``--workers 1``), after a call."""
    with tempfile.TemporaryDirectory(prefix="daisi-bench-idle-") as tmp:
        _write(Path(tmp), 1)
        with LocalRuntime(tmp, workers=1) as rt, httpx.Client(base_url=rt.api, timeout=90) as http:
            did = http.get("/v1/daisies").json()["daisies"][0]["id"]
            _call(http, did)
            time.sleep(1.0)  # settle
            assert rt.process is not None
            workers = worker_memory(rt.process.pid)
    if not workers:
        raise RuntimeError("no worker process found below the server")
    return {"workers": workers}
