"""Helpers shared by the benchmark scripts: statistics, byte counting, a loop thread."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import resource
import statistics
import threading
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import psutil

T = TypeVar("T")

MB = 1_000_000
"""Sizes and rates use decimal megabytes (100 MB = 100,000,000 bytes)."""


# -- statistics ---------------------------------------------------------------------------
def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; NaN when empty."""
    data = sorted(values)
    if not data:
        return math.nan
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def median(values: Iterable[float]) -> float:
    """The median; NaN when empty."""
    data = list(values)
    return statistics.median(data) if data else math.nan


def ms(seconds: float) -> str:
    """Seconds as milliseconds text (``"1.23 ms"``)."""
    return "n/a" if math.isnan(seconds) else f"{seconds * 1e3:.2f} ms"


# -- memory -------------------------------------------------------------------------------
def current_rss() -> int:
    """The resident set size of this process now, in bytes (Linux ``/proc``)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def ru_maxrss() -> int:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` in bytes.

    Linux carries it over ``fork`` + ``exec``: in a subprocess it is at least the
    parent's resident size at the fork, whatever the child itself used.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def peak_rss() -> int:
    """The peak resident set size of this process's own memory (``VmHWM``), in bytes.

    Unlike ``ru_maxrss`` it starts afresh at ``exec`` and :func:`reset_peak_rss` resets it.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return ru_maxrss()


def reset_peak_rss() -> bool:
    """Reset the peak to the current resident size (Linux ``clear_refs``); False if not."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _cpu(proc: psutil.Process) -> float:
    """CPU seconds of a process and of its children it has reaped (user + system)."""
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def tree_cpu(pid: int) -> dict[str, float]:
    """CPU seconds used so far by a process (``server``) and every live process below it
    (``workers``: the worker processes and, with a sandbox, their ``bwrap`` parents)."""
    try:
        root = psutil.Process(pid)
        server = _cpu(root)
        below = root.children(recursive=True)
    except psutil.Error:
        return {"server": math.nan, "workers": math.nan}
    workers = 0.0
    for child in below:
        with contextlib.suppress(psutil.Error):
            workers += _cpu(child)
    return {"server": server, "workers": workers}


# -- results ------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the final table."""

    scenario: str
    measured: str
    target: str = ""
    passed: bool | None = None  # None: informative, no target

    @property
    def verdict(self) -> str:
        """``PASS``, ``MISS`` or ``info``."""
        if self.passed is None:
            return "info"
        return "PASS" if self.passed else "MISS"


def render_table(rows: list[Row]) -> str:
    """A plain-text table of rows."""
    head = ("scenario", "measured", "target", "result")
    cells = [head] + [(r.scenario, r.measured, r.target, r.verdict) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = []
    for n, c in enumerate(cells):
        lines.append("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# -- counting bytes received --------------------------------------------------------------
@dataclass
class ByteCounter:
    """Response body bytes, per request path and in total."""

    by_path: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        """All response body bytes counted."""
        return sum(self.by_path.values())

    def reset(self) -> None:
        """Forget everything counted so far."""
        self.by_path.clear()


class _CountingStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, counter: ByteCounter, key: str) -> None:
        self._inner = inner
        self._counter = counter
        self._key = key

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._counter.by_path[self._key] += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class CountingTransport(httpx.AsyncHTTPTransport):
    """An ``httpx`` transport that counts the body bytes of every response it receives."""

    def __init__(self, counter: ByteCounter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.counter = counter

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        key = f"{request.method} {request.url.path}"
        response.stream = _CountingStream(stream, self.counter, key)
        return response


# -- an event loop in a thread ------------------------------------------------------------
class LoopThread:
    """An asyncio loop running in a background thread; :meth:`run` blocks on a coroutine.

    The benchmark's main thread stays synchronous (the sync facade, pydaisi and Dask run
    there); async clients live on this loop, and each coroutine times its own calls.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="bench-loop")
        self._thread.daemon = True
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()
