"""Scenario 3, run in its own process by ``run.py``: a large numpy argument and result.

Prints one JSON object on stdout. Peak memory is this process's peak resident size
(``VmHWM``, reset just before the array is allocated) after the echo round trips, minus
its resident size at that moment. ``ru_maxrss`` is reported too, but in a subprocess
Linux starts it at the parent's resident size, so it can hide a smaller peak.

    python benchmarks/_payload.py --url http://127.0.0.1:8421 --mb 100 --reps 3
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from typing import Any

import dill
import httpx
import numpy as np
from _common import MB, current_rss, median, peak_rss, reset_peak_rss, ru_maxrss

from daisi_async import AsyncDaisi


async def _echo_once(echo: AsyncDaisi, arr: np.ndarray) -> dict[str, float]:
    """One ``echo(arr)``: upload+submit, server time, download+decode, timed apart."""
    t0 = time.perf_counter()
    ex = await echo.echo_(arr)  # dill dump + POST /v1/blobs + submit
    t1 = time.perf_counter()
    await ex.wait()  # the worker loads the blob, echoes, dumps and stores the result
    t2 = time.perf_counter()
    out = await ex  # GET the result + dill load
    t3 = time.perf_counter()
    ok = isinstance(out, np.ndarray) and out.shape == arr.shape and bool(np.array_equal(out, arr))
    del out, ex
    return {"up": t1 - t0, "server": t2 - t1, "down": t3 - t2, "total": t3 - t0, "ok": ok}


async def _upload_only(bench: AsyncDaisi, arr: np.ndarray) -> tuple[float, bool]:
    """``nbytes(arr)``: the upload, with a tiny execution and result."""
    t0 = time.perf_counter()
    n = await bench.nbytes(arr)
    return time.perf_counter() - t0, n == arr.nbytes


async def _download_only(bench: AsyncDaisi, size: int) -> tuple[float, bool]:
    """``zeros(size)`` made server-side: only the download + decode is timed."""
    ex = await bench.zeros_(size)
    await ex.wait()
    t0 = time.perf_counter()
    out = await ex
    dt = time.perf_counter() - t0
    ok = isinstance(out, np.ndarray) and out.nbytes == size
    del out
    return dt, ok


async def _raw_floor(url: str, data: bytes) -> tuple[float, float]:
    """Raw httpx: POST the same dill bytes to /v1/blobs, then stream them back."""
    async with httpx.AsyncClient(base_url=url + "/pebble-api", timeout=120) as client:
        t0 = time.perf_counter()
        r = await client.post(
            "/v1/blobs", content=data, headers={"content-type": "application/octet-stream"}
        )
        up = time.perf_counter() - t0
        r.raise_for_status()
        key = r.json()["key"]
        t0 = time.perf_counter()
        n = 0
        async with client.stream("GET", f"/v1/blobs/{key}") as resp:
            async for chunk in resp.aiter_raw(1 << 20):
                n += len(chunk)
        down = time.perf_counter() - t0
        assert n == len(data), (n, len(data))
    return up, down


async def main(url: str, size: int, reps: int) -> dict[str, Any]:
    echo = await AsyncDaisi.connect("Echo", base_url=url, timeout=300)
    bench = await AsyncDaisi.connect("Bench", base_url=url, timeout=300)
    try:
        # Warm-up: every code path once, with a small array.
        small = np.arange(MB // 8, dtype=np.float64)
        await _echo_once(echo, small)
        await _upload_only(bench, small)
        await _download_only(bench, MB)
        del small
        gc.collect()

        baseline = current_rss()
        reset = reset_peak_rss()
        arr = np.arange(size // 8, dtype=np.float64)
        payload = arr.nbytes

        echo_runs = [await _echo_once(echo, arr)]
        peak_first = peak_rss()
        echo_runs += [await _echo_once(echo, arr) for _ in range(reps - 1)]
        peak = peak_rss()
        maxrss = ru_maxrss()

        uploads = [await _upload_only(bench, arr) for _ in range(reps)]
        downloads = [await _download_only(bench, payload) for _ in range(reps)]
        data = dill.dumps(arr, protocol=5)  # the bytes the client uploads
        del arr
        raw = [await _raw_floor(url, data) for _ in range(reps)]
    finally:
        await echo.aclose()
        await bench.aclose()

    def rate(seconds: float) -> float:
        return payload / MB / seconds

    up = median(r["up"] for r in echo_runs)
    down = median(r["down"] for r in echo_runs)
    return {
        "payload_bytes": payload,
        "reps": reps,
        "echo": echo_runs,
        "echo_ok": all(r["ok"] for r in echo_runs),
        "echo_total_s": median(r["total"] for r in echo_runs),
        "echo_server_s": median(r["server"] for r in echo_runs),
        "echo_up_s": up,
        "echo_down_s": down,
        "upload_mb_s": rate(up),
        "download_mb_s": rate(down),
        "upload_only_s": median(t for t, _ in uploads),
        "upload_only_mb_s": rate(median(t for t, _ in uploads)),
        "upload_only_ok": all(ok for _, ok in uploads),
        "download_only_s": median(t for t, _ in downloads),
        "download_only_mb_s": rate(median(t for t, _ in downloads)),
        "download_only_ok": all(ok for _, ok in downloads),
        "raw_upload_mb_s": rate(median(u for u, _ in raw)),
        "raw_download_mb_s": rate(median(d for _, d in raw)),
        "rss_baseline_bytes": baseline,
        "peak_reset": reset,
        "peak_bytes": peak,
        "ru_maxrss_bytes": maxrss,
        "peak_first_multiple": (peak_first - baseline) / payload,
        "peak_over_baseline_bytes": peak - baseline,
        "peak_multiple": (peak - baseline) / payload,
        "ru_maxrss_multiple": (maxrss - baseline) / payload,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--mb", type=float, default=100)
    parser.add_argument("--reps", type=int, default=3)
    ns = parser.parse_args()
    result = asyncio.run(main(ns.url, int(ns.mb * MB), ns.reps))
    print(json.dumps(result))
