"""The final table of ``run.py``: one row per measure, with its target and verdict.

Example:
    >>> build_rows({})  # no scenario ran
    []
"""

from __future__ import annotations

from typing import Any

from _cluster import cluster_rows
from _common import MB, Row, ms, percentile
from _streams import stream_rows
from _talk import talk_rows

CPU_TARGET = 0.4e-3
"""Seconds of CPU per execution (client + server + workers) in the gather: the target."""


def _cpu_rows(runs: list[dict[str, Any]]) -> list[Row]:
    total = sum(r["n"] for r in runs)
    per = {k: sum(r["cpu_s"][k] for r in runs) / total for k in ("client", "server", "workers")}
    cpu = sum(per.values())
    return [
        Row(
            "2 CPU time per execution",
            "  ".join(f"{k} {v * 1e3:.3f} ms" for k, v in per.items()),
        ),
        Row(
            "2 CPU per execution, client + server + workers",
            f"{cpu * 1e3:.3f} ms = {cpu / CPU_TARGET:.2f}x the 0.4 ms target",
            "<= 0.4 ms (1x)",
            cpu <= CPU_TARGET,
        ),
    ]


def _idle_rows(res: dict[str, Any]) -> list[Row]:
    workers = res["workers"]
    rss = max(w["rss"] for w in workers)
    w = max(workers, key=lambda w: w["rss"])
    return [
        Row(
            "12 idle warm worker of a trivial Daisi",
            f"RSS {rss / MB:.1f} MB  (USS {w['uss'] / MB:.1f} MB, PSS {w['pss'] / MB:.1f} MB;"
            f" sandbox wrapper +{w['wrapper_rss'] / MB:.1f} MB RSS)",
            "<= 30 MB RSS",
            rss <= 30 * MB,
        )
    ]


GATHER_TARGET = 4_000
"""Executions per second of the 10,000-call gather (scenario 2)."""
GATHER_VS_DASK = 8.0
"""The gather's best rate over Dask's best fan-out rate in the same run (scenario 9)."""
TRANSFER_TARGET = 600
"""MB/s of a 100 MB argument's upload and of its result's download (scenario 3)."""
PEAK_TARGET = 2.2
"""The client's peak memory in the 100 MB echo, as a multiple of the payload."""


def _dask_rows(runs: list[dict[str, Any]], cluster: dict[str, Any] | None) -> list[Row]:
    """The gather beside Dask's fan-out of the same size (scenario 9's plain Dask), if
    that ran: the target is a multiple of Dask's rate, measured in the same run."""
    if not cluster:
        return []
    dask = max(cluster["fan_out"]["per_s"]["dask"])
    ours = max(r["per_s"] for r in runs)
    return [
        Row(
            "2 ratio gather / Dask map + gather",
            f"{ours / dask:.2f}x (best {ours:,.0f}/s / best {dask:,.0f}/s)",
            f">= {GATHER_VS_DASK:g}x",
            ours >= GATHER_VS_DASK * dask,
        )
    ]


# The targets' ratios of p50 latencies: (label, numerator, denominator, bound, is upper)
RATIOS = [
    ("1 ratio async / raw floor", "async", "floor", 2.0, True),
    ("1 ratio raw v1 ?wait / raw floor (server)", "raw_v1", "floor", 1.5, True),
    ("1 ratio pydaisi / async", "pydaisi", "async", 10.0, False),
    ("1 ratio async / Dask", "async", "dask", 1.0, True),
    ("1 ratio sync / async", "sync", "async", 1.2, True),
]

# The same ratios for the reference server of ``_essential.py``: what the targets above
# ask of a server that does nothing but the essential steps. (label, numerator, target)
REFERENCE_RATIOS = [
    ("1 reference: minimal server, raw httpx / raw floor", "essential", "raw v1 <= 1.5x"),
    (
        "1 reference: minimal server, httpx.AsyncClient / raw floor",
        "essential_async",
        "async <= 2x",
    ),
    ("1 raw v1 ?wait / minimal server, raw httpx (our server's cost)", "raw_v1", None),
]


def _reference_rows(lat: dict[str, Any]) -> list[Row]:
    """The reference server's calls over the floor (the targets' bounds beside them, for
    reading; they judge nothing), and our v1 call over the reference's."""
    rows: list[Row] = []
    if "essential" not in lat:
        return rows
    for label, name, bound in REFERENCE_RATIOS:
        base = "floor" if bound else "essential"
        if name in lat and base in lat:
            value = lat[name]["p50"] / lat[base]["p50"]
            note = f"  (the target on ours: {bound})" if bound else ""
            rows.append(Row(label, f"{value:.2f}x (p50 / p50){note}"))
    return rows


def build_rows(res: dict[str, Any]) -> list[Row]:
    """The final table: absolute numbers, then the §6 ratios and targets."""
    rows: list[Row] = []
    lat = res.get("latency")
    if lat:
        labels = {
            "floor": "1 raw httpx GET /capabilities (floor)",
            "raw_v1": "1 raw httpx POST v1 execution ?wait",
            "raw_batch": "1 raw httpx POST v1 batch, NDJSON wait",
            "async": "1 AsyncDaisi await d.compute(1, 2)",
            "sync": "1 sync facade d.compute(1, 2).value",
            "pydaisi": "1 pydaisi .compute(1, 2).value",
            "dask": "1 Dask submit(add, 1, 2).result()",
            "essential": "1 minimal reference server POST /run, raw httpx",
            "essential_async": "1 minimal reference server POST /run, httpx.AsyncClient",
        }
        for name, label in labels.items():
            if name in lat:
                v = lat[name]
                err = f", {v['errors']} errors" if v["errors"] else ""
                text = f"p50 {ms(v['p50'])}  p90 {ms(v['p90'])}  (n={v['n']}{err})"
                rows.append(Row(label, text, passed=None if not v["errors"] else False))
        for label, num, den, bound, upper in RATIOS:
            if num in lat and den in lat:
                value = lat[num]["p50"] / lat[den]["p50"]
                target = f"{'<=' if upper else '>='} {bound:g}x"
                ok = value <= bound if upper else value >= bound
                rows.append(Row(label, f"{value:.2f}x (p50 / p50)", target, ok))
        rows += _reference_rows(lat)
    for i, run in enumerate(res.get("throughput", []), 1):
        bad = run["exceptions"] + run["wrong"]
        text = f"{run['per_s']:,.0f}/s  ({run['n']:,} in {run['seconds']:.2f} s, {bad} errors)"
        rows.append(
            Row(
                f"2 gather {run['n']:,} executions, run {i}",
                text,
                f">= {GATHER_TARGET:,}/s, 0 errors",
                run["per_s"] >= GATHER_TARGET and bad == 0,
            )
        )
    runs = res.get("throughput", [])
    if runs:
        rows += _dask_rows(runs, res.get("cluster"))
        rows += _cpu_rows(runs)
    pay = res.get("payload")
    if pay:
        size = pay["payload_bytes"] / MB
        ok = pay["echo_ok"]
        rows.append(
            Row(
                f"3 echo({size:.0f} MB array) wall time",
                f"{pay['echo_total_s']:.2f} s  (up {pay['echo_up_s']:.2f} + server "
                f"{pay['echo_server_s']:.2f} + down {pay['echo_down_s']:.2f})"
                + ("" if ok else "  WRONG RESULT"),
                passed=None if ok else False,
            )
        )
        rows.append(
            Row(
                "3 upload (dill + POST + submit)",
                f"{pay['upload_mb_s']:.0f} MB/s",
                f">= {TRANSFER_TARGET} MB/s",
                pay["upload_mb_s"] >= TRANSFER_TARGET,
            )
        )
        rows.append(
            Row(
                "3 download (GET result + dill load)",
                f"{pay['download_mb_s']:.0f} MB/s",
                f">= {TRANSFER_TARGET} MB/s",
                pay["download_mb_s"] >= TRANSFER_TARGET,
            )
        )
        rows.append(
            Row(
                "3 client peak memory over baseline",
                f"{pay['peak_multiple']:.2f}x payload ({pay['peak_over_baseline_bytes'] / MB:.0f}"
                f" MB) over {pay['reps']} call(s)"
                + (f"; {pay['peak_first_multiple']:.2f}x after the 1st" if pay["reps"] > 1 else ""),
                f"<= {PEAK_TARGET}x",
                pay["peak_multiple"] <= PEAK_TARGET,
            )
        )
        rows.append(
            Row(
                "3 upload-only call nbytes(arr), total",
                f"{pay['upload_only_mb_s']:.0f} MB/s ({pay['upload_only_s']:.2f} s)",
            )
        )
        rows.append(
            Row(
                "3 download-only (server-made array)",
                f"{pay['download_only_mb_s']:.0f} MB/s ({pay['download_only_s']:.2f} s)",
            )
        )
        rows.append(
            Row(
                "3 raw httpx blob POST / GET (floor)",
                f"{pay['raw_upload_mb_s']:.0f} / {pay['raw_download_mb_s']:.0f} MB/s",
            )
        )
    chain = res.get("chain")
    if chain:
        rows.append(
            Row(
                f"4 chain x3 on {chain['payload_bytes'] / MB:.0f} MB: result bytes in",
                f"{chain['result_bytes']:,} B  (all responses: {chain['received_bytes']:,} B "
                "of protocol JSON)",
                "0 B",
                chain["result_bytes"] == 0,
            )
        )
        rows.append(
            Row(
                "4 then fetching the final result",
                f"{chain['final_fetch_bytes']:,} B"
                + (", value correct" if chain["final_ok"] else ", WRONG VALUE"),
                passed=None if chain["final_ok"] else False,
            )
        )
    logs = res.get("logs")
    if logs:
        for key, label in (
            ("live", "5 first log line, stream already open"),
            ("immediate", "5 first log line, printed at start"),
        ):
            v = logs[key]
            rows.append(
                Row(
                    label,
                    f"median {ms(v['median'])}  max {ms(v['max'])}",
                    "<= 50 ms",
                    v["median"] <= 0.050,
                )
            )
    cold = res.get("cold_start")
    if cold:
        n = len(cold["first"])
        rows.append(
            Row(
                f"6 first call of a fresh Daisi (n={n})",
                f"p50 {ms(percentile(cold['first'], 50))}  max {ms(max(cold['first']))}"
                f"  (next call, warm: p50 {ms(percentile(cold['second'], 50))})",
            )
        )
    for run in res.get("many", []):
        label = "workers on first use" if run["workers"] == 0 else "--workers 1"
        rows.append(
            Row(
                f"7 {run['daisies']} Daisies, {label}: time to ready",
                f"{run['ready_s']:.2f} s"
                + (
                    f"  (all {run['ready_daisies']} warm at {run['all_warm_s']:.2f} s)"
                    if run["workers"]
                    else ""
                ),
                "< 2 s",
                run["ready_s"] < 2.0,
            )
        )
        rows.append(
            Row(
                f"7 {run['daisies']} Daisies, {label}: idle RSS",
                f"{run['rss_bytes'] / MB:.0f} MB (server + {run['ready_daisies']} workers)",
            )
        )
    if res.get("cluster"):
        rows += cluster_rows(res["cluster"])
    envs = res.get("envs")
    if envs:
        rows.append(
            Row(
                "8 first result, env cached (restart)",
                f"median {envs['cached_s']:.2f} s  (n={len(envs['cached_runs'])})",
            )
        )
        rows.append(
            Row(
                "8 first result, env built fresh",
                f"median {envs['fresh_s']:.2f} s with uv's cache warm, {envs['cold_s']:.2f} s cold",
            )
        )
    if res.get("talk"):
        rows += talk_rows(res["talk"])
    if res.get("streams"):
        rows += stream_rows(res["streams"])
    if res.get("idle_worker"):
        rows += _idle_rows(res["idle_worker"])
    return rows
