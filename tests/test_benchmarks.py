"""The benchmark smoke run: ``benchmarks/run.py --smoke`` runs every scenario with tiny
counts, and every scenario's values are present and correct.

Nothing here is timed: the smoke run's numbers mean nothing (the PASS/MISS verdicts
neither); this only keeps the benchmark runnable. ``pytest -m bench`` selects it.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import daisi_async

pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "run.py"
SCENARIOS = range(1, 13)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    env = dict(os.environ)
    src = str(Path(daisi_async.__file__).resolve().parents[1])  # the package under test
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, str(RUN), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "daisi-async benchmarks (smoke" in proc.stdout
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def test_every_scenario_has_rows_in_the_table(results: dict[str, Any]) -> None:
    assert results["mode"] == "smoke"
    numbers = {row["scenario"].split()[0] for row in results["table"]}
    assert numbers == {str(n) for n in SCENARIOS}
    assert {row["result"] for row in results["table"]} <= {"PASS", "MISS", "info"}
    for row in results["table"]:
        assert row["measured"] and "nan" not in row["measured"] and "n/a" not in row["measured"]


def test_trivial_call_variants_all_answer_right(results: dict[str, Any]) -> None:
    latency = results["latency"]
    assert set(latency) == {
        "floor", "raw_v1", "raw_batch", "async", "sync", "pydaisi", "dask",
        "essential", "essential_async",
    }  # fmt: skip
    for name, v in latency.items():
        assert v["errors"] == 0, name
        assert v["n"] > 0 and _finite(v["p50"]) and v["p50"] > 0, name


def test_throughput_runs_are_correct_and_cpu_is_measured(results: dict[str, Any]) -> None:
    runs = results["throughput"]
    assert len(runs) == 2
    for run in runs:
        assert run["exceptions"] == 0 and run["wrong"] == 0, run["first_error"]
        assert run["n"] == results["settings"]["gather_n"]
        assert all(_finite(v) and v >= 0 for v in run["cpu_s"].values())
    assert sum(run["cpu_s"]["server"] for run in runs) > 0


def test_payload_chain_and_logs_values(results: dict[str, Any]) -> None:
    pay = results["payload"]
    assert pay["echo_ok"] and pay["upload_only_ok"] and pay["download_only_ok"]
    assert _finite(pay["upload_mb_s"]) and _finite(pay["peak_multiple"])
    chain = results["chain"]
    assert chain["result_bytes"] == 0 and chain["final_ok"]
    for key in ("live", "immediate"):
        assert _finite(results["logs"][key]["median"])


def test_lifecycle_envs_and_cluster_values(results: dict[str, Any]) -> None:
    cold = results["cold_start"]
    assert len(cold["first"]) == len(cold["second"]) == results["settings"]["cold_daisies"]
    lazy, warm = results["many"]
    daisies = results["settings"]["many_daisies"]
    assert lazy["daisies"] == warm["daisies"] == daisies
    assert warm["ready_daisies"] == daisies and lazy["rss_bytes"] > 0
    envs = results["envs"]
    assert _finite(envs["cached_s"]) and _finite(envs["fresh_s"])
    cluster = results["cluster"]
    assert set(cluster["latency"]) == {"cluster", "dask"}
    assert _finite(cluster["first_line"]["median"])


def test_call_with_logs_overheads(results: dict[str, Any]) -> None:
    talk = results["talk"]
    assert set(talk) == {"async", "pydaisi"}
    for v in talk.values():
        assert len(v["runs"]) == results["settings"]["talk_calls"]
        assert all(_finite(x) and x > 0 for x in v["runs"])  # wall time beyond the run


def test_every_stream_gets_every_event(results: dict[str, Any]) -> None:
    s = results["streams"]
    assert s["errors"] == 0, s["first_error"]
    assert s["streams"] == results["settings"]["streams"]
    assert s["gapless"] == s["streams"]
    assert s["events"] == s["expected_events"] == s["streams"] * (s["lines"] + 3)
    assert s["server_rss_peak"] >= s["server_rss_before"] > 0


def test_idle_worker_memory_is_measured(results: dict[str, Any]) -> None:
    workers = results["idle_worker"]["workers"]
    assert len(workers) == 1
    w = workers[0]
    assert 0 < w["uss"] <= w["rss"] and 0 < w["pss"] <= w["rss"]


@pytest.mark.parametrize("scenario", ["call", "gather"])
def test_the_cpu_profile_names_both_sides(scenario: str) -> None:
    """``benchmarks/cpu_profile.py`` profiles the server (switched on and off by signals)
    and the client over one scenario, and lists our functions on each side."""
    env = dict(os.environ)
    src = str(Path(daisi_async.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "cpu_profile.py"),
         "--scenario", scenario, "--n", "40", "--top", "8"],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stdout
    assert f"scenario {scenario}, n=40" in out
    server, _, client = out.partition("== client")
    assert "== server (event-loop thread)" in server
    assert "daisi_async/server/" in server  # the engine, store or routes: profiled there
    assert "daisi_async/_" in client and "daisi_async/server/" not in client
