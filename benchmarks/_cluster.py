"""Scenario 9 of ``run.py``: the cluster backend (``daisi serve --cluster``) beside plain
Dask, on the same Dask cluster, in one run.

A ``dask scheduler`` and ``dask worker --nworkers 2 --nthreads 1`` (processes on this
machine), a runtime pointed at them (``--cluster``, one warm worker process of *Add Two
Numbers* per Dask worker), and a Dask ``Client`` on the same scheduler:

* trivial call, p50 in interleaved rounds: ``await d.compute(1, 2)`` through the cluster
  backend vs ``client.submit(operator.add, 1, 2, pure=False).result()``;
* fan-out: ``asyncio.gather`` of N ``d.compute(i, 1)`` vs ``client.map(operator.add,
  range(N), [1] * N, pure=False)`` + ``client.gather``, alternately, twice each;
* the first log line of an execution on a Dask worker: printed (*Bench*'s ``stamp``)
  until the client sees it, with the log stream already open (as scenario 5).
"""

from __future__ import annotations

import asyncio
import json
import operator
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from _common import LoopThread, Row, ms, percentile

from daisi_async import AsyncDaisi
from daisi_async.testing import LocalRuntime

ROOT = Path(__file__).resolve().parents[1]
DASK = str(Path(sys.executable).with_name("dask"))


@contextmanager
def dask_cluster(workers: int = 2) -> Iterator[str]:
    """A scheduler and ``workers`` single-threaded worker processes; yields the address."""
    with tempfile.TemporaryDirectory(prefix="daisi-bench-dask-") as tmp:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        }
        sfile = Path(tmp) / "scheduler.json"
        log = open(Path(tmp) / "dask.log", "ab")  # noqa: SIM115 - closed below
        procs = [
            subprocess.Popen(
                [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                 "--no-show", "--scheduler-file", str(sfile)],
                stdout=log, stderr=log, env=env, start_new_session=True,
            )
        ]  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            address = None
            while address is None:  # the file may be there before it is all written
                with suppress(OSError, ValueError, KeyError):
                    address = json.loads(sfile.read_text())["address"]
                if address is None:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the Dask scheduler did not start")
                    time.sleep(0.05)
            procs.append(
                subprocess.Popen(
                    [
                        DASK,
                        "worker",
                        address,
                        "--nworkers",
                        str(workers),
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--local-directory",
                        tmp,
                    ],
                    stdout=log,
                    stderr=log,
                    env=env,
                    start_new_session=True,
                )
            )
            yield address
        finally:
            for proc in reversed(procs):
                with _suppress():
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    with _suppress():
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            log.close()


@contextmanager
def _suppress() -> Iterator[None]:
    with suppress(ProcessLookupError):
        yield


async def _calls(d: AsyncDaisi, k: int) -> list[float]:
    times = []
    for _ in range(k):
        t0 = time.perf_counter()
        assert await d.compute(1, 2) == 3
        times.append(time.perf_counter() - t0)
    return times


async def _gather(d: AsyncDaisi, n: int) -> float:
    t0 = time.perf_counter()
    values = await asyncio.gather(*(d.compute(i, 1) for i in range(n)))
    dt = time.perf_counter() - t0
    assert values == [i + 1 for i in range(n)]
    return n / dt


def scenario_cluster(
    loop: LoopThread, *, rounds: int, calls: int, fan_out: int, log_runs: int
) -> dict[str, Any]:
    """The cluster backend and plain Dask on one Dask cluster (see the module docstring)."""
    from distributed import Client

    folders = {
        "add-two-numbers": ROOT / "examples" / "daisies" / "add-two-numbers",
        "bench": ROOT / "benchmarks" / "daisies" / "bench",
    }
    with (
        dask_cluster(2) as address,
        Client(address, timeout=60) as client,
        tempfile.TemporaryDirectory(prefix="daisi-bench-") as tmp,
    ):
        client.wait_for_workers(2, timeout=120)
        for name, folder in folders.items():
            (Path(tmp) / name).symlink_to(folder, target_is_directory=True)
        with LocalRuntime(tmp, workers=1, extra_args=["--cluster", address]) as rt:
            d = loop.run(AsyncDaisi.connect("Add Two Numbers", base_url=rt.url))
            try:
                variants: dict[str, Callable[[int], list[float]]] = {
                    "cluster": lambda k: loop.run(_calls(d, k)),
                    "dask": lambda k: _dask_calls(client, k),
                }
                for run in variants.values():  # warm-up: workers, imports, connections
                    run(max(3, calls // 2))
                times: dict[str, list[float]] = {name: [] for name in variants}
                names = list(variants)
                for r in range(rounds):
                    for name in names[r % 2 :] + names[: r % 2]:
                        times[name] += variants[name](calls)
                rates: dict[str, list[float]] = {"cluster": [], "dask": []}
                for _ in range(2):
                    rates["dask"].append(_dask_map(client, fan_out))
                    rates["cluster"].append(loop.run(_gather(d, fan_out)))
                lines = loop.run(_first_lines(rt.url, log_runs))
            finally:
                loop.run(d.aclose())
    return {
        "latency": {
            name: {"p50": percentile(t, 50), "p90": percentile(t, 90), "n": len(t)}
            for name, t in times.items()
        },
        "fan_out": {"n": fan_out, "per_s": rates},
        "first_line": {"median": percentile(lines, 50), "max": max(lines), "runs": lines},
    }


async def _first_lines(url: str, runs: int) -> list[float]:
    out = []
    async with AsyncDaisi("Bench", base_url=url) as d:
        for i in range(runs + 1):  # the first one warms the worker process up
            ex = await d.stamp_(before=0.3, after=0.1)
            line = await anext(aiter(ex.logs()))
            seen = time.time()
            await ex
            if i:
                out.append(seen - float(line.split()[-1]))
    return out


def _dask_calls(client: Any, k: int) -> list[float]:
    times = []
    for _ in range(k):
        t0 = time.perf_counter()
        assert client.submit(operator.add, 1, 2, pure=False).result() == 3
        times.append(time.perf_counter() - t0)
    return times


def _dask_map(client: Any, n: int) -> float:
    t0 = time.perf_counter()
    futures = client.map(operator.add, range(n), [1] * n, pure=False)
    values = client.gather(futures)
    dt = time.perf_counter() - t0
    assert values == [i + 1 for i in range(n)]
    del futures
    return n / dt


def cluster_rows(res: dict[str, Any]) -> list[Row]:
    """The table rows of scenario 9."""
    lat, fan = res["latency"], res["fan_out"]
    ours, dask = lat["cluster"], lat["dask"]
    rows = [
        Row("9 cluster backend await d.compute(1, 2)",
            f"p50 {ms(ours['p50'])}  p90 {ms(ours['p90'])}  (n={ours['n']})"),
        Row("9 Dask submit(add, 1, 2).result(), same cluster",
            f"p50 {ms(dask['p50'])}  p90 {ms(dask['p90'])}  (n={dask['n']})"),
        Row("9 ratio cluster backend / Dask", f"{ours['p50'] / dask['p50']:.2f}x (p50 / p50)",
            "<= 1x", ours["p50"] <= dask["p50"]),
    ]  # fmt: skip
    best_ours, best_dask = max(fan["per_s"]["cluster"]), max(fan["per_s"]["dask"])
    rows += [
        Row(f"9 cluster backend gather {fan['n']:,}",
            "  ".join(f"{r:,.0f}/s" for r in fan["per_s"]["cluster"])),
        Row(f"9 Dask map + gather {fan['n']:,}, same cluster",
            "  ".join(f"{r:,.0f}/s" for r in fan["per_s"]["dask"])),
        Row("9 ratio fan-out cluster backend / Dask", f"{best_ours / best_dask:.2f}x (best / best)",
            ">= 1x", best_ours >= best_dask),
    ]  # fmt: skip
    first = res["first_line"]
    rows.append(
        Row(
            "9 first log line from a Dask worker",
            f"median {ms(first['median'])}  max {ms(first['max'])}",
            "<= 100 ms",
            first["median"] <= 0.100,
        )
    )
    return rows
