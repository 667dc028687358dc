"""A walk through the wire protocol: the local runtime on examples/daisies, called over raw HTTP.

Everything here is plain HTTP (httpx) against the runtime's routes, so it shows what
travels on the wire: connect, submit, live logs from the event stream, results,
a remote traceback.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import dill
import httpx

from daisi_async.testing import LocalRuntime

HERE = Path(__file__).resolve().parent


def banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 60 - len(text)))


def main() -> None:
    with LocalRuntime(HERE / "daisies") as rt, httpx.Client(base_url=rt.api, timeout=60) as http:
        print(f"Local Daisi runtime at {rt.url}")

        banner("Catalogue")
        for d in http.get("/daisies/collections/all/daisies").json()["data"]["data"]:
            print(f"  {d['name']:<32} {d['id']}")

        banner("Add Two Numbers: compute(firstNumber=5, secondNumber=6)")
        daisi = http.get("/daisies/connect", params={"name": "Add Two Numbers"}).json()
        t0 = time.perf_counter()
        ex = http.post(
            f"/v1/daisies/{daisi['id']}/executions",
            params={"wait": 30},
            json={
                "endpoint": "compute",
                "arguments": {"firstNumber": {"value": 5}, "secondNumber": {"value": 6}},
            },
        ).json()
        ms = (time.perf_counter() - t0) * 1000
        print(f"  status={ex['status']} result={ex['result']['value']} ({ms:.1f} ms)")

        banner("Live Logging: live_log_test(5, 6, delay=3), lines as they are printed")
        live = http.get("/daisies/connect", params={"name": "Live Logging"}).json()
        eid = http.post(
            f"/pebbles/{live['id']}/executions/live_log_test",
            json={"firstNumber": 5, "secondNumber": 6, "delay": 3},
        ).json()["id"]
        t0 = time.perf_counter()
        with http.stream("GET", f"/v1/executions/{eid}/events") as events:
            for line in events.iter_lines():
                if line.startswith("data: "):
                    ev = json.loads(line[6:])
                    what = ev.get("line") or ev.get("status")
                    print(f"  +{time.perf_counter() - t0:5.2f}s  {what}")
        res = http.get(
            f"/pebbles/{live['id']}/executions/{eid}/results",
            params={"download": "true", "all_fields": "true"},
        ).json()
        value = dill.loads(base64.b64decode(res["results"]))
        print(f"  result (legacy route, base64 dill) -> {value}")

        banner("Always Fails: divide(1, 0) -> the remote traceback")
        fails = http.get("/daisies/connect", params={"name": "Always Fails"}).json()
        ex = http.post(
            f"/v1/daisies/{fails['id']}/executions",
            params={"wait": 30},
            json={
                "endpoint": "divide",
                "arguments": {"numerator": {"value": 1}, "denominator": {"value": 0}},
            },
        ).json()
        print(f"  status={ex['status']} type={ex['error']['type']}")
        print("  " + ex["error"]["traceback"].rstrip().replace("\n", "\n  "))

        banner("Zero Shot Text Classification")
        zs = http.get("/daisies/connect", params={"name": "Zero Shot Text Classification"}).json()
        ex = http.post(
            f"/v1/daisies/{zs['id']}/executions",
            params={"wait": 30},
            json={
                "endpoint": "compute",
                "arguments": {
                    "text": {"value": "Let's go the moon"},
                    "candidate_labels": {"value": "astronomy, travel"},
                },
            },
        ).json()
        print(f"  {ex['result']['value']}")

        banner("Bad input gets a precise 4xx")
        r = http.post(f"/pebbles/{daisi['id']}/executions/compute", json={"firstNumber": 5})
        print(f"  {r.status_code} {r.json()['error']['message']}")
        r = http.get("/daisies/connect", params={"name": "No Such Daisi"})
        print(f"  {r.status_code} {r.json()['error']['message']}")


if __name__ == "__main__":
    main()
