"""What the sandbox costs: a worker's cold start and a trivial call, with and without it.

For ``--isolation none`` and ``--isolation sandbox`` in turn, one runtime serves
``--daisies`` small Daisies (workers start on first use):

* cold start: the first call of each Daisi (its worker starts for it: bwrap, Python,
  the import) beside the second call on the now warm worker, one Daisi at a time;
* trivial call: ``--calls`` raw ``POST /pebble-api/v1/daisies/{id}/executions?wait=30``
  calls, one at a time, on a warm worker.

Run: ``python benchmarks/sandbox_cost.py [--daisies 8] [--calls 200]``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import httpx
from _common import ms, percentile
from _lifecycle import _call, _write

from daisi_async.testing import LocalRuntime


def measure(isolation: str, daisies: int, calls: int) -> dict[str, Any]:
    """Cold and warm first calls, then ``calls`` trivial calls, under ``isolation``."""
    with tempfile.TemporaryDirectory(prefix="daisi-bench-sandbox-") as tmp:
        _write(Path(tmp), daisies)
        args = ["--isolation", isolation]
        with (
            LocalRuntime(tmp, workers=0, extra_args=args) as rt,
            httpx.Client(base_url=rt.api, timeout=90) as http,
        ):
            ids = [d["id"] for d in http.get("/v1/daisies").json()["daisies"]]
            first, second = [], []
            for did in ids:
                first.append(_call(http, did))
                second.append(_call(http, did))
            for _ in range(20):  # warm up the connection and the worker
                _call(http, ids[0])
            trivial = [_call(http, ids[0]) for _ in range(calls)]
    return {"first": first, "second": second, "trivial": trivial}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daisies", type=int, default=8)
    parser.add_argument("--calls", type=int, default=200)
    ns = parser.parse_args()
    print(f"{'':10} {'cold p50':>10} {'warm p50':>10} {'call p50':>10} {'call p90':>10}")
    for isolation in ("none", "sandbox"):
        got = measure(isolation, ns.daisies, ns.calls)
        print(
            f"{isolation:10} {ms(percentile(got['first'], 50)):>10}"
            f" {ms(percentile(got['second'], 50)):>10}"
            f" {ms(percentile(got['trivial'], 50)):>10} {ms(percentile(got['trivial'], 90)):>10}"
        )


if __name__ == "__main__":
    main()
