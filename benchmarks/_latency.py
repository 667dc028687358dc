"""Scenario 1 of ``run.py``: one trivial call on a warm worker, every variant side by side.

Raw httpx (the floor, a v1 call, the batch route), ``AsyncDaisi``, the sync facade, the
original pydaisi client and a Dask ``LocalCluster``, in interleaved rounds (each round
runs every variant, in a rotated order) against one runtime; beside them, the same call
on the reference server of :mod:`_essential` (the least a server of this design does),
from raw httpx and from an ``httpx.AsyncClient``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx
from _common import LoopThread, percentile
from _essential import essential_server

from daisi_async import AsyncDaisi, Daisi
from daisi_async.testing import LocalRuntime

COMPUTE_BODY = {
    "endpoint": "compute",
    "arguments": {"firstNumber": {"value": 1}, "secondNumber": {"value": 2}},
}


Timings = tuple[list[float], int]  # (seconds per call, errors)


def _timed(fn: Callable[[], Any], k: int, expected: Any) -> Timings:
    times: list[float] = []
    errors = 0
    for _ in range(k):
        t0 = time.perf_counter()
        try:
            ok = fn() == expected
        except Exception:
            ok = False
        times.append(time.perf_counter() - t0)
        errors += not ok
    return times, errors


async def _async_timed(fn: Callable[[], Awaitable[Any]], k: int, expected: Any) -> Timings:
    times: list[float] = []
    errors = 0
    for _ in range(k):
        t0 = time.perf_counter()
        try:
            ok = await fn() == expected
        except Exception:
            ok = False
        times.append(time.perf_counter() - t0)
        errors += not ok
    return times, errors


def _add(a: int, b: int) -> int:
    return a + b


def _quiet_pydaisi() -> None:
    for name in ("pydaisi", "pydaisi.pydaisi"):
        lg = logging.getLogger(name)
        lg.setLevel(logging.WARNING)
        lg.handlers.clear()
        lg.propagate = False


def scenario_latency(
    rt: LocalRuntime, loop: LoopThread, *, rounds: int, calls: int, pydaisi_calls: int
) -> dict[str, Any]:
    """Interleaved rounds of every variant of one trivial call, against one server."""
    url = rt.url
    os.environ["DAISI_BASE_URL"] = url
    with contextlib.ExitStack() as stack:
        http = stack.enter_context(httpx.Client(base_url=rt.api, timeout=60))
        daisi_id = http.get(f"/v1/daisies/{quote('Add Two Numbers', safe='')}").json()["id"]

        def floor() -> int:
            return http.get("/capabilities").status_code

        def raw_v1() -> Any:
            r = http.post(f"/v1/daisies/{daisi_id}/executions?wait=30", json=COMPUTE_BODY)
            return r.json()["result"]["value"]

        batch = {"executions": [{"daisi_id": daisi_id, **COMPUTE_BODY}]}

        def raw_batch() -> Any:  # the route AsyncDaisi uses: batch submit + NDJSON wait
            with http.stream("POST", "/v1/executions?wait=60", json=batch) as r:
                for line in r.iter_lines():
                    msg = json.loads(line) if line else {}
                    if msg.get("type") == "done":
                        return msg["execution"]["result"]["value"]
            return None

        ad = loop.run(AsyncDaisi.connect("Add Two Numbers", base_url=url))
        stack.callback(lambda: loop.run(ad.aclose()))
        sd = stack.enter_context(Daisi("Add Two Numbers", base_url=url))

        reference = stack.enter_context(essential_server())
        ref = stack.enter_context(httpx.Client(base_url=reference, timeout=60))

        def essential() -> Any:
            return ref.post("/run", json=COMPUTE_BODY).json()["result"]["value"]

        aref = httpx.AsyncClient(base_url=reference, timeout=60)
        stack.callback(lambda: loop.run(aref.aclose()))

        async def essential_async() -> Any:
            return (await aref.post("/run", json=COMPUTE_BODY)).json()["result"]["value"]

        variants: dict[str, Callable[[int], Timings]] = {
            "floor": lambda k: _timed(floor, k, 200),
            "raw_v1": lambda k: _timed(raw_v1, k, 3),
            "raw_batch": lambda k: _timed(raw_batch, k, 3),
            "async": lambda k: loop.run(_async_timed(lambda: ad.compute(1, 2), k, 3)),
            "sync": lambda k: _timed(lambda: sd.compute(1, 2).value, k, 3),
            "essential": lambda k: _timed(essential, k, 3),
            "essential_async": lambda k: loop.run(_async_timed(essential_async, k, 3)),
        }
        try:
            import pydaisi

            _quiet_pydaisi()
            pd = pydaisi.Daisi("Add Two Numbers")  # connected once, like the others
            variants["pydaisi"] = lambda k: _timed(lambda: pd.compute(1, 2).value, k, 3)
        except ImportError:
            print("pydaisi is not installed: the pydaisi comparison is skipped", file=sys.stderr)
        try:
            from dask.distributed import Client, LocalCluster

            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=1,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            )
            dask = stack.enter_context(Client(cluster))
            variants["dask"] = lambda k: _timed(
                lambda: dask.submit(_add, 1, 2, pure=False).result(), k, 3
            )
        except ImportError:
            print(
                "dask[distributed] is not installed: the Dask comparison is skipped",
                file=sys.stderr,
            )

        counts = {name: pydaisi_calls if name == "pydaisi" else calls for name in variants}
        times: dict[str, list[float]] = {name: [] for name in variants}
        errors = dict.fromkeys(variants, 0)
        for name, run in variants.items():  # warm-up: connections, workers, code paths
            run(max(3, counts[name] // 2))
        names = list(variants)
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                t, e = variants[name](counts[name])
                times[name] += t
                errors[name] += e
    out: dict[str, Any] = {}
    for name in names:
        out[name] = {
            "p50": percentile(times[name], 50),
            "p90": percentile(times[name], 90),
            "n": len(times[name]),
            "errors": errors[name],
        }
    return out
