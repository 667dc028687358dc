"""daisi-async benchmarks: the performance targets of benchmarks/README.md, measured in
one run against one local runtime.

Starts ``daisi serve`` on a loopback port (serving Add Two Numbers, Echo and the
benchmark-only Bench Daisi), then measures, side by side:

1. a trivial call on a warm worker: raw httpx (floor and whole v1 call), AsyncDaisi,
   the sync facade, the original pydaisi client and a Dask LocalCluster;
2. throughput of ``asyncio.gather`` over N executions (twice);
3. a 100 MB numpy argument and result (in a subprocess, for its peak memory);
4. bytes received by the client while chaining executions on a 20 MB array;
5. latency of the first live log line;
6. cold start: the first call of a fresh Daisi (its worker starts for it);
7. a runtime serving 40 Daisies: time to ready, and memory while idle;
8. time to the first result of a Daisi with a requirements.txt: its environment
   reused after a restart vs built fresh (a runtime of its own, see ``_envs.py``);
9. the cluster backend (``daisi serve --cluster``) beside plain Dask on one Dask
   cluster: trivial call p50 and fan-out rate (``_cluster.py``);
10. a 0.3 s call that prints: the client's overhead beside pydaisi's (``_talk.py``);
11. 1,000 concurrent event streams, every event delivered with no gap (``_streams.py``);
12. the memory of an idle warm worker of a trivial Daisi (``_lifecycle.py``).

Scenarios 6 to 9 and 12 start runtimes (or clusters) of their own.

Usage: ``python benchmarks/run.py [--quick] [--json FILE]`` (or ``make bench``);
``--smoke`` runs every scenario with tiny counts, to check that they run (the test
suite does, in ``tests/test_benchmarks.py``): its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _cluster import scenario_cluster
from _common import (
    MB,
    ByteCounter,
    CountingTransport,
    LoopThread,
    median,
    render_table,
    tree_cpu,
)
from _envs import scenario_envs
from _latency import scenario_latency
from _lifecycle import scenario_cold_start, scenario_idle_worker, scenario_many
from _streams import raise_fd_limit, scenario_streams
from _table import build_rows
from _talk import scenario_talk

from daisi_async import AsyncDaisi
from daisi_async.testing import LocalRuntime

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DAISIES = {
    "add-two-numbers": ROOT / "examples" / "daisies" / "add-two-numbers",
    "echo": ROOT / "tests" / "daisies" / "echo",
    "bench": HERE / "daisies" / "bench",
}


@dataclass(frozen=True)
class Settings:
    """How much work each scenario does."""

    rounds: int  # scenario 1: interleaved rounds
    calls: int  # scenario 1: calls per variant per round
    pydaisi_calls: int  # scenario 1: pydaisi polls, so fewer
    gather_n: int  # scenario 2
    payload_mb: float  # scenario 3
    payload_reps: int  # scenario 3
    chain_mb: float  # scenario 4
    log_runs: int  # scenario 5, per variant
    cold_daisies: int  # scenario 6
    many_daisies: int  # scenario 7
    env_reps: int = 3  # scenario 8: restarts and fresh builds, each
    talk_calls: int = 5  # scenario 10: calls per client
    streams: int = 1_000  # scenario 11: concurrent event streams
    stream_lines: int = 3  # scenario 11: lines each execution prints


QUICK = Settings(
    rounds=5,
    calls=20,
    pydaisi_calls=3,
    gather_n=2_000,
    payload_mb=100,
    payload_reps=1,
    chain_mb=20,
    log_runs=5,
    cold_daisies=5,
    many_daisies=40,
    streams=500,
)
FULL = Settings(
    rounds=20,
    calls=50,
    pydaisi_calls=8,
    gather_n=10_000,
    payload_mb=100,
    payload_reps=5,
    chain_mb=20,
    log_runs=15,
    cold_daisies=10,
    many_daisies=40,
    env_reps=5,
    talk_calls=15,
    streams=1_000,
    stream_lines=5,
)
SMOKE = Settings(  # every scenario, tiny: checks that they run (tests/test_benchmarks.py)
    rounds=1,
    calls=3,
    pydaisi_calls=2,
    gather_n=60,
    payload_mb=1,
    payload_reps=1,
    chain_mb=1,
    log_runs=1,
    cold_daisies=2,
    many_daisies=3,
    env_reps=1,
    talk_calls=1,
    streams=40,
    stream_lines=3,
)


def log(msg: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def runtime(workers: int, streams: int) -> Iterator[LocalRuntime]:
    """One ``daisi serve`` process for every scenario, over a folder of symlinked Daisies.

    The default ``--limit-concurrency`` (4,096 open connections) leaves room for
    scenario 11's ``streams`` event streams beside the other scenarios' connections; it
    is raised only for more streams than that allows.
    """
    limit = ["--limit-concurrency", str(streams + 500)] if streams + 500 > 4096 else []
    with tempfile.TemporaryDirectory(prefix="daisi-bench-") as tmp:
        for name, src in DAISIES.items():
            (Path(tmp) / name).symlink_to(src, target_is_directory=True)
        with LocalRuntime(tmp, workers=workers, extra_args=limit) as rt:
            yield rt


# == 2. throughput =======================================================================
async def _gather(url: str, n: int, server_pid: int) -> dict[str, Any]:
    async with AsyncDaisi("Add Two Numbers", base_url=url) as d:
        await d.compute(0, 1)
        cpu0, server0 = time.process_time(), tree_cpu(server_pid)
        t0 = time.perf_counter()
        values = await asyncio.gather(*(d.compute(i, 1) for i in range(n)), return_exceptions=True)
        dt = time.perf_counter() - t0
        cpu1, server1 = time.process_time(), tree_cpu(server_pid)
    exceptions = [v for v in values if isinstance(v, BaseException)]
    wrong = sum(1 for i, v in enumerate(values) if not isinstance(v, BaseException) and v != i + 1)
    first = repr(exceptions[0]) if exceptions else None
    return {
        "n": n,
        "seconds": dt,
        "per_s": n / dt,
        "exceptions": len(exceptions),
        "wrong": wrong,
        "first_error": first,
        "cpu_s": {
            "client": cpu1 - cpu0,
            "server": server1["server"] - server0["server"],
            "workers": server1["workers"] - server0["workers"],
        },
    }


def scenario_throughput(rt: LocalRuntime, loop: LoopThread, s: Settings) -> list[dict[str, Any]]:
    """``asyncio.gather`` over N executions, default connection pool, twice."""
    assert rt.process is not None
    pid = rt.process.pid
    return [loop.run(_gather(rt.url, s.gather_n, pid)) for _ in range(2)]


# == 3. large payload (subprocess) =======================================================
def scenario_payload(rt: LocalRuntime, s: Settings) -> dict[str, Any]:
    """Run ``_payload.py`` in a fresh process, so its peak RSS is this scenario's alone."""
    cmd = [sys.executable, str(HERE / "_payload.py"), "--url", rt.url]
    cmd += ["--mb", str(s.payload_mb), "--reps", str(s.payload_reps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"the payload scenario failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# == 4. chained remote results ===========================================================
async def _chain(url: str, size: int) -> dict[str, Any]:
    counter = ByteCounter()
    client = httpx.AsyncClient(transport=CountingTransport(counter), timeout=120)
    try:
        async with AsyncDaisi("Echo", base_url=url, client=client) as d:
            await d.echo(1)  # warm-up
            arr = np.arange(size // 8, dtype=np.float64)
            counter.reset()
            ex1 = await d.echo_(arr)
            ex2 = await d.echo_(ex1)
            ex3 = await d.echo_(ex2)
            await ex3.wait()
            during = dict(counter.by_path)
            counter.reset()
            final = await ex3
            ok = bool(np.array_equal(final, arr))
            fetched = counter.total
    finally:
        await client.aclose()
    result_bytes = sum(
        n
        for key, n in during.items()
        if key.endswith("/result") or (key.startswith("GET ") and "/blobs/" in key)
    )
    return {
        "payload_bytes": size,
        "received_bytes": sum(during.values()),
        "result_bytes": result_bytes,
        "by_path": during,
        "final_fetch_bytes": fetched,
        "final_ok": ok,
    }


def scenario_chain(rt: LocalRuntime, loop: LoopThread, s: Settings) -> dict[str, Any]:
    """Three chained executions; count what the client receives before the last fetch."""
    return loop.run(_chain(rt.url, int(s.chain_mb * MB)))


# == 5. first log line ===================================================================
async def _first_line(d: AsyncDaisi, before: float) -> float:
    ex = await d.stamp_(before=before, after=0.2)
    latency = float("nan")
    async with contextlib.aclosing(aiter(ex.logs())) as lines:
        async for line in lines:
            seen = time.time()
            latency = seen - float(line.split()[-1])
            break
    await ex
    return latency


async def _first_lines(url: str, runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"live": [], "immediate": []}
    async with AsyncDaisi("Bench", base_url=url) as d:
        await _first_line(d, 0.0)  # warm-up
        for _ in range(runs):  # interleaved
            out["live"].append(await _first_line(d, 0.3))
            out["immediate"].append(await _first_line(d, 0.0))
    return out


def scenario_logs(rt: LocalRuntime, loop: LoopThread, s: Settings) -> dict[str, Any]:
    """Wall-clock delay between a worker's ``print`` and the line reaching the client."""
    runs = loop.run(_first_lines(rt.url, s.log_runs))
    return {k: {"median": median(v), "max": max(v), "runs": v} for k, v in runs.items()}


def _cluster(loop: LoopThread, s: Settings) -> dict[str, Any] | None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        log("dask[distributed] is not installed: the cluster scenario is skipped")
        return None
    return scenario_cluster(
        loop, rounds=s.rounds, calls=s.calls, fan_out=s.gather_n, log_runs=s.log_runs
    )


def _streams(rt: LocalRuntime, loop: LoopThread, s: Settings) -> dict[str, Any]:
    assert rt.process is not None
    return scenario_streams(
        loop, rt.api, rt.process.pid, n=s.streams, lines=s.stream_lines, workers=rt.workers
    )


# == main ================================================================================
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="daisi-async benchmarks (benchmarks/README.md)")
    parser.add_argument("--quick", action="store_true", help="smaller counts (about 2 minutes)")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny counts: only checks that every scenario runs"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes each Daisi keeps warm"
    )
    parser.add_argument(
        "--only",
        default="1,2,3,4,5,6,7,8,9,10,11,12",
        help="comma-separated scenario numbers to run (default: all)",
    )
    ns = parser.parse_args(argv)
    s = SMOKE if ns.smoke else QUICK if ns.quick else FULL
    only = {int(x) for x in ns.only.split(",") if x.strip()}

    started = time.perf_counter()
    res: dict[str, Any] = {
        "mode": "smoke" if ns.smoke else "quick" if ns.quick else "full",
        "settings": asdict(s),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_at_start": os.getloadavg(),
        },
    }
    if 11 in only:  # each stream is a socket at both ends (the runtime inherits the limit)
        res["machine"]["fd_limit"] = raise_fd_limit(2 * s.streams + 1024)
    loop = LoopThread()
    try:
        with runtime(ns.workers, s.streams) as rt:
            log(f"runtime at {rt.url} ({ns.workers} workers per Daisi)")
            steps: list[tuple[int, str, Callable[[], Any]]] = [
                (
                    1,
                    "latency",
                    lambda: scenario_latency(
                        rt, loop, rounds=s.rounds, calls=s.calls, pydaisi_calls=s.pydaisi_calls
                    ),
                ),
                (2, "throughput", lambda: scenario_throughput(rt, loop, s)),
                (3, "payload", lambda: scenario_payload(rt, s)),
                (4, "chain", lambda: scenario_chain(rt, loop, s)),
                (5, "logs", lambda: scenario_logs(rt, loop, s)),
                (10, "talk", lambda: scenario_talk(rt.url, loop, s.talk_calls)),
                (11, "streams", lambda: _streams(rt, loop, s)),
            ]
            for number, key, step in steps:
                if number not in only:
                    continue
                log(f"scenario {number}: {key}")
                t0 = time.perf_counter()
                res[key] = step()
                log(f"scenario {number}: done in {time.perf_counter() - t0:.1f} s")
        own: list[tuple[int, str, Callable[[], Any]]] = [
            (6, "cold_start", lambda: scenario_cold_start(s.cold_daisies)),
            (7, "many", lambda: scenario_many(s.many_daisies)),
            (8, "envs", lambda: scenario_envs(s.env_reps)),
            (9, "cluster", lambda: _cluster(loop, s)),
            (12, "idle_worker", scenario_idle_worker),
        ]
        for number, key, step in own:  # each on runtimes of its own
            if number in only:
                log(f"scenario {number}: {key}")
                t0 = time.perf_counter()
                res[key] = step()
                log(f"scenario {number}: done in {time.perf_counter() - t0:.1f} s")
    finally:
        loop.close()
    res["seconds"] = time.perf_counter() - started
    res["machine"]["loadavg_at_end"] = os.getloadavg()
    rows = build_rows(res)
    res["table"] = [asdict(r) | {"result": r.verdict} for r in rows]

    print()
    m = res["machine"]
    load = "/".join(f"{x:.1f}" for x in m["loadavg_at_start"])
    print(f"daisi-async benchmarks ({res['mode']}, {m['cpus']} CPUs, loopback, load {load})")
    print(render_table(rows))
    misses = [r for r in rows if r.passed is False]
    print(f"\n{len(misses)} miss(es); total {res['seconds']:.0f} s")
    if ns.json:
        Path(ns.json).write_text(json.dumps(res, indent=2, default=str))
        log(f"results written to {ns.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
