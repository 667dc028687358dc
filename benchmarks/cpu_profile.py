"""Where the CPU of a call goes: the runtime's and the client's profiles of one scenario.

Starts ``daisi serve`` on *Add Two Numbers* (``examples/daisies``) with ``--workers 2``,
warms it up, then profiles, with cProfile on a CPU clock (``time.thread_time``: waiting
and being preempted are not counted), the server's event-loop thread
(``_profiled_serve.py``) and this client's thread while it runs one scenario:

* ``call``: ``N`` sequential ``await d.compute(1, 2)``;
* ``gather``: ``asyncio.gather`` of ``N`` calls ``d.compute(i, 1)``.

It prints, for each side, the functions with the most CPU of their own and our
functions by CPU including what they call, per call of the scenario. cProfile's own
cost inflates small, frequent functions: compare lines with each other, and absolute
CPU with ``run.py``'s CPU row (psutil, no profiler).

    python benchmarks/cpu_profile.py --scenario gather --n 10000
    python benchmarks/cpu_profile.py --scenario call --n 2000 --top 30
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import daisi_async
from daisi_async import AsyncDaisi

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples" / "daisies"


def _start_server(tmp: str, out: str) -> tuple[subprocess.Popen[bytes], str]:
    ready = Path(tmp, "ready.json")
    cmd = [
        sys.executable, str(HERE / "_profiled_serve.py"), out, "serve", str(EXAMPLES),
        "--host", "127.0.0.1", "--port", "0", "--store", str(Path(tmp, "store")),
        "--workers", "2", "--ready-file", str(ready),
    ]  # fmt: skip
    env = dict(os.environ)
    src = str(Path(daisi_async.__file__ or ".").resolve().parents[1])  # the package in use
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    log = open(Path(tmp, "server.log"), "wb")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    log.close()
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the server did not start:\n{Path(tmp, 'server.log').read_text()}")
        time.sleep(0.02)
    return proc, str(json.loads(ready.read_text())["url"])


async def _scenario(d: AsyncDaisi, kind: str, n: int) -> None:
    if kind == "call":
        for _ in range(n):
            if await d.compute(1, 2) != 3:
                raise SystemExit("a wrong value")
    else:
        values = await asyncio.gather(*(d.compute(i, 1) for i in range(n)))
        if values != [i + 1 for i in range(n)]:
            raise SystemExit("a wrong value")


async def _client(
    url: str, kind: str, n: int, server: subprocess.Popen[bytes]
) -> tuple[cProfile.Profile, float]:
    async with AsyncDaisi("Add Two Numbers", base_url=url) as d:
        await _scenario(d, kind, max(n // 10, 20))  # warm-up: workers, connections, imports
        profile = cProfile.Profile(time.thread_time)
        server.send_signal(signal.SIGUSR1)
        await asyncio.sleep(0.2)  # the server takes the signal at its next loop turn
        start = time.perf_counter()
        profile.enable()
        await _scenario(d, kind, n)
        profile.disable()
        wall = time.perf_counter() - start
        server.send_signal(signal.SIGUSR2)
    return profile, wall


def _report(title: str, stats: pstats.Stats, n: int, top: int) -> str:
    """The top lines of ``stats``, own CPU first, then ours including callees, per call."""
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    lines = [f"== {title}: {total / n * 1e3:.3f} ms of profiled CPU per call"]

    def name(key: tuple[str, int, str]) -> str:
        file, line, func = key
        short = file.split("site-packages/")[-1].split("/src/")[-1]
        return f"{short}:{line}({func})" if line else func

    lines.append("   own ms/call   calls/call  function")
    for key, (_, calls, own, _, _) in sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]:
        lines.append(f"  {own / n * 1e3:11.4f}  {calls / n:11.2f}  {name(key)}")
    lines.append("   incl ms/call  calls/call  function (daisi_async only)")
    ours = [kv for kv in raw.items() if "daisi_async" in kv[0][0]]
    for key, (_, calls, _, incl, _) in sorted(ours, key=lambda kv: -kv[1][3])[:top]:
        lines.append(f"  {incl / n * 1e3:11.4f}  {calls / n:11.2f}  {name(key)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=["call", "gather"], default="gather")
    parser.add_argument("--n", type=int, default=10_000, help="calls in the scenario")
    parser.add_argument("--top", type=int, default=25, help="lines per list")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="daisi-profile-") as tmp:
        out = str(Path(tmp, "server.prof"))
        server, url = _start_server(tmp, out)
        try:
            client, wall = asyncio.run(_client(url, args.scenario, args.n, server))
            deadline = time.monotonic() + 60
            while not os.path.exists(out) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not os.path.exists(out):
                raise SystemExit("the server wrote no profile")
            server_stats = pstats.Stats(out, stream=io.StringIO())
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
    print(
        f"scenario {args.scenario}, n={args.n}: {wall / args.n * 1e3:.3f} ms per call, "
        f"{args.n / wall:,.0f} calls/s (with the profilers on)"
    )
    print(_report("server (event-loop thread)", server_stats, args.n, args.top))
    print(_report("client", pstats.Stats(client, stream=io.StringIO()), args.n, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
