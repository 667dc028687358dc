"""Scenario 10 of ``run.py``: a 0.3 s call that prints, our client beside pydaisi.

*Bench* ``talk(lines=5, seconds=0.3)`` prints five lines over 0.3 s and returns the
seconds it ran (measured in the worker). A call's **overhead** is its wall time in the
client minus that run time: submitting, waiting for the end, fetching the result. The
two clients run in interleaved rounds against the same server: ``await d.talk()``
with ``AsyncDaisi`` and ``pydaisi.Daisi("Bench").talk().value`` with the original
``pydaisi==0.3.3.0`` (``DAISI_BASE_URL`` pointed at the runtime, as in
``tests/test_pydaisi_compat.py``), which polls for the end of a call.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from _common import LoopThread, Row, median, ms

from daisi_async import AsyncDaisi

LINES = 5
SECONDS = 0.3


async def _ours(d: AsyncDaisi) -> float:
    t0 = time.perf_counter()
    ran = await d.talk(lines=LINES, seconds=SECONDS)
    return time.perf_counter() - t0 - float(ran)


def _theirs(pd: Any) -> float:
    t0 = time.perf_counter()
    ran = pd.talk(lines=LINES, seconds=SECONDS).value
    return time.perf_counter() - t0 - float(ran)


def scenario_talk(url: str, loop: LoopThread, calls: int) -> dict[str, Any]:
    """``calls`` interleaved rounds of one call by each client (after one warm-up each)."""
    os.environ["DAISI_BASE_URL"] = url
    out: dict[str, list[float]] = {"async": []}
    d = loop.run(AsyncDaisi.connect("Bench", base_url=url))
    try:
        variants: dict[str, Any] = {"async": lambda: loop.run(_ours(d))}
        try:
            import pydaisi

            for name in ("pydaisi", "pydaisi.pydaisi"):
                lg = logging.getLogger(name)
                lg.setLevel(logging.WARNING)
                lg.propagate = False
            pd = pydaisi.Daisi("Bench")
            variants["pydaisi"] = lambda: _theirs(pd)
            out["pydaisi"] = []
        except ImportError:
            pass
        for run in variants.values():  # warm-up
            run()
        names = list(variants)
        for r in range(calls):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                out[name].append(variants[name]())
    finally:
        loop.run(d.aclose())
    return {name: {"median": median(v), "max": max(v), "runs": v} for name, v in out.items()}


def talk_rows(res: dict[str, Any]) -> list[Row]:
    """The table rows of scenario 10."""
    rows: list[Row] = []
    labels = {
        "async": f"10 {SECONDS:g} s call with logs, AsyncDaisi overhead",
        "pydaisi": f"10 {SECONDS:g} s call with logs, pydaisi overhead",
    }
    for name, label in labels.items():
        if name in res:
            v = res[name]
            n = len(v["runs"])
            rows.append(Row(label, f"median {ms(v['median'])}  max {ms(v['max'])}  (n={n})"))
    if "pydaisi" in res:
        ours, theirs = res["async"]["median"], res["pydaisi"]["median"]
        ratio = theirs / ours if ours > 0 else float("inf")
        rows.append(
            Row(
                "10 ratio pydaisi / async overhead",
                f"{ratio:.1f}x (median / median)",
                ">= 10x",
                ratio >= 10,
            )
        )
    return rows
