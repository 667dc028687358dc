"""Scenario 6: time to the first result of a Daisi with a requirements.txt, its
environment built fresh vs reused after a restart.

A runtime of its own (the other scenarios' runtime has no environment to build) serves
one toy Daisi requiring ``toypkg==1.0``, installed offline from a folder of local wheels
(as the tests do), so the numbers measure the runtime and uv, not the network. Each
measure starts ``daisi serve`` and ends with the first result of a call.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from daisi_async.server.registry import daisi_id
from daisi_async.testing import LocalRuntime

ROOT = Path(__file__).resolve().parent.parent
APP = "import toypkg\n\n\ndef version() -> str:\n    return toypkg.VERSION\n"


def _first_result(rt: LocalRuntime, eid: str) -> float:
    """Seconds from starting the server to the first result of a call."""
    started = time.perf_counter()
    rt.start()
    body = {"endpoint": "version", "arguments": {}}
    with httpx.Client(base_url=rt.api, timeout=120) as client:
        r = client.post(f"/v1/daisies/{eid}/executions", params={"wait": 120}, json=body)
        execution = r.json()
        while execution["status"] in ("QUEUED", "RUNNING"):
            execution = client.get(f"/v1/executions/{execution['id']}", params={"wait": 120}).json()
    elapsed = time.perf_counter() - started
    if execution["status"] != "FINISHED" or execution["result"]["value"] != "1.0":
        raise RuntimeError(f"the toy Daisi did not answer 1.0: {execution}")
    rt.stop()
    return elapsed


def scenario_envs(reps: int) -> dict[str, Any]:
    """Fresh build with a cold uv cache (once), fresh builds with a warm uv cache and
    restarts with the environment cached (``reps`` each, interleaved)."""
    sys.path.insert(0, str(ROOT))
    from tests.support.wheels import toy_wheels

    with tempfile.TemporaryDirectory(prefix="daisi-bench-envs-") as tmp:
        base = Path(tmp)
        wheels = toy_wheels(base / "wheels")
        (base / "daisies" / "toy").mkdir(parents=True)
        (base / "daisies" / "toy" / "app.py").write_text(APP)
        (base / "daisies" / "toy" / "requirements.txt").write_text("toypkg==1.0\n")
        store = base / "store"
        rt = LocalRuntime(
            base / "daisies",
            store=store,
            extra_args=["--find-links", str(wheels), "--offline"],
            env={"UV_CACHE_DIR": str(base / "uv-cache")},
        )
        eid = daisi_id("local", "toy")
        try:
            cold = _first_result(rt, eid)
            fresh, cached = [], []
            for _ in range(reps):
                cached.append(_first_result(rt, eid))
                shutil.rmtree(store / "envs")
                fresh.append(_first_result(rt, eid))
        finally:
            rt.close()
    return {
        "cold_s": cold,
        "fresh_s": statistics.median(fresh),
        "cached_s": statistics.median(cached),
        "fresh_runs": fresh,
        "cached_runs": cached,
    }
