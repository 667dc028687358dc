"""Scenario 11 of ``run.py``: many concurrent event streams on one server.

One batch submits N executions of *Bench* ``ticks(lines)`` (each prints ``lines``
numbered lines), behind one *gate* execution per possible worker (``ticks(0, before)``:
it sleeps while the streams open, so that they follow their executions live); then N
concurrent SSE connections each follow one execution's
``GET /v1/executions/{id}/events`` until its terminal status. Every stream must get
every event of its execution with no gap: sequence numbers 1, 2, 3, ... (``QUEUED``,
``RUNNING``, the lines in order, ``FINISHED``). The server's resident memory is sampled
while the streams are open.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import time
from typing import Any

import httpx
import psutil
from _common import MB, Row
from httpx_sse import aconnect_sse

TERMINAL = {"FINISHED", "FAILED", "CANCELLED"}
GATE_PER_STREAM = 0.006
"""Seconds the gate executions sleep per stream to open (plus half a second)."""


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft ``RLIMIT_NOFILE`` towards ``wanted`` (up to the hard
    limit); processes started later (the runtime) inherit it. Returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return int(soft)


async def _follow(client: httpx.AsyncClient, eid: str, lines: int) -> dict[str, Any]:
    seqs: list[int] = []
    got: list[str] = []
    final = None
    running_at = opened_at = float("nan")
    async with aconnect_sse(client, "GET", f"/v1/executions/{eid}/events") as source:
        opened_at = time.time()
        response = source.response
        if response.status_code != 200:
            body = (await response.aread()).decode(errors="replace")[:200]
            raise RuntimeError(f"GET /events answered {response.status_code}: {body!r}")
        async for sse in source.aiter_sse():
            if not sse.data:
                continue
            event = json.loads(sse.data)
            seqs.append(int(event["seq"]))
            if sse.event == "log":
                got.append(event["line"])
            elif sse.event == "status":
                if event["status"] == "RUNNING":
                    running_at = float(event["time"])
                if event["status"] in TERMINAL:
                    final = event["status"]
                    break
    expected = [f"tick {i + 1}" for i in range(lines)]
    return {
        "events": len(seqs),
        "gapless": seqs == list(range(1, len(seqs) + 1)),
        "lines_ok": got == expected,
        "finished": final == "FINISHED",
        "live": opened_at < running_at,  # the stream was open before the execution ran
    }


async def _sample_rss(pid: int, peak: list[int], stop: asyncio.Event) -> None:
    proc = psutil.Process(pid)
    while not stop.is_set():
        peak[0] = max(peak[0], proc.memory_info().rss)
        await asyncio.sleep(0.1)


async def _streams(api: str, server_pid: int, n: int, lines: int, workers: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=n + 8, max_keepalive_connections=n + 8)
    async with httpx.AsyncClient(base_url=api, timeout=120, limits=limits) as client:
        did = (await client.get("/v1/daisies/Bench")).json()["id"]
        rss_before = psutil.Process(server_pid).memory_info().rss
        item = {"daisi_id": did, "endpoint": "ticks", "arguments": {"lines": {"value": lines}}}
        # Gates first: one execution per possible worker sleeps while the streams open, so
        # the streams follow their executions live (the count of those is reported).
        gates = max(os.cpu_count() or 1, workers)
        gate = {
            "daisi_id": did,
            "endpoint": "ticks",
            "arguments": {"lines": {"value": 0}, "before": {"value": 0.5 + n * GATE_PER_STREAM}},
        }
        batch = [gate] * gates + [item] * n
        r = await client.post("/v1/executions", json={"executions": batch})
        r.raise_for_status()
        ids = [x["execution"]["id"] for x in r.json()["results"]][gates:]
        peak = [rss_before]
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sample_rss(server_pid, peak, stop))
        t0 = time.perf_counter()
        try:
            follows = (_follow(client, eid, lines) for eid in ids)
            results = await asyncio.wait_for(
                asyncio.gather(*follows, return_exceptions=True), timeout=300
            )
        finally:
            stop.set()
            await sampler
        seconds = time.perf_counter() - t0
    ok = [x for x in results if isinstance(x, dict)]
    errors = [repr(x) for x in results if not isinstance(x, dict)]
    return {
        "streams": n,
        "lines": lines,
        "seconds": seconds,
        "events": sum(x["events"] for x in ok),
        "expected_events": n * (lines + 3),  # QUEUED, RUNNING, the lines, FINISHED
        "gapless": sum(x["gapless"] and x["lines_ok"] and x["finished"] for x in ok),
        "live": sum(x["live"] for x in ok),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "server_rss_before": rss_before,
        "server_rss_peak": peak[0],
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


def stream_rows(res: dict[str, Any]) -> list[Row]:
    """The table rows of scenario 11."""
    n = res["streams"]
    good = res["gapless"] == n and res["events"] == res["expected_events"] and not res["errors"]
    return [
        Row(
            f"11 {n:,} concurrent event streams",
            f"{res['gapless']:,}/{n:,} complete, no gap ({res['events']:,} of "
            f"{res['expected_events']:,} events, {res['errors']} errors) "
            f"in {res['seconds']:.1f} s; "
            f"{res['live']:,} open before their execution ran",
            "all, no gap",
            good,
        ),
        Row(
            f"11 {n:,} concurrent event streams: server RSS",
            f"{res['server_rss_peak'] / MB:.0f} MB peak (idle before: "
            f"{res['server_rss_before'] / MB:.0f} MB)",
        ),
    ]


def scenario_streams(
    loop: Any, api: str, server_pid: int, *, n: int, lines: int, workers: int
) -> dict[str, Any]:
    """Follow ``n`` executions' event streams at once (``loop``: a ``LoopThread``;
    ``workers``: the runtime's ``--workers``, to hold every worker while they open)."""
    result: dict[str, Any] = loop.run(_streams(api, server_pid, n, lines, workers))
    return result
