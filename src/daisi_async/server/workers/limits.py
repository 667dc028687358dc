"""The time and memory limits of a running execution: a watchdog per busy worker.

Every ``MEMORY_CHECK_INTERVAL`` while a job runs, the watchdog measures the worker's
process tree (the resident memory of the worker and of every process below it,
:func:`daisi_async.server.workers.proctree.tree_rss`) against the memory limit, notes
which processes are below the worker (to kill them should the worker crash), and kills
the worker once the job's deadline has passed. Busy workers share one scan of ``/proc``
per ``SCAN_MAX_AGE``.

Example:
    >>> start_watchdog(worker, timeout=30, memory_limit=8 * 2**30)  # doctest: +SKIP
    >>> ...  # the job runs; worker.kill_reason is "time" or "memory" if a limit hit
    >>> worker.stop_watchdog()  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING

from . import proctree

if TYPE_CHECKING:
    from .process import WorkerProcess

__all__ = ["MEMORY_CHECK_INTERVAL", "SCAN_MAX_AGE", "start_watchdog"]

MEMORY_CHECK_INTERVAL = 0.25
"""Seconds between two checks of a busy worker's resident memory (its whole tree)."""

SCAN_MAX_AGE = 0.1
"""Memory checks within this many seconds of each other share one scan of ``/proc``."""


class _SharedScan:
    """The latest scan of ``/proc``, reused for ``max_age`` seconds.

    With many busy workers, a check every 0.25 s each would scan ``/proc`` many times
    a second; sharing bounds it to one scan per ``max_age``.
    """

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._at = -math.inf
        self._table: proctree.Table = {}

    def table(self) -> proctree.Table:
        now = time.monotonic()
        if now - self._at > self.max_age:
            self._table = proctree.scan()
            self._at = time.monotonic()
        return self._table


_scans = _SharedScan(SCAN_MAX_AGE)


def start_watchdog(worker: WorkerProcess, *, timeout: float, memory_limit: int | None) -> None:
    """Enforce ``timeout`` seconds (from now) and ``memory_limit`` bytes on the worker's job,
    until :meth:`WorkerProcess.stop_watchdog`; a limit hit kills the worker."""
    loop = asyncio.get_running_loop()
    now = loop.time()
    worker.deadline = now + max(timeout, 0.0)
    worker.peak_rss = 0
    worker.watchdog = loop.call_at(
        min(worker.deadline, now + MEMORY_CHECK_INTERVAL), _watch, worker, memory_limit
    )


def _watch(worker: WorkerProcess, memory_limit: int | None) -> None:
    """One check; one timer per running job, rescheduled at the next check or the deadline."""
    worker.watchdog = None
    if worker.gone or not worker.busy:
        return
    loop = asyncio.get_running_loop()
    now = loop.time()
    if now >= worker.deadline:
        worker.kill("time")
        return
    table = _scans.table()
    root = table.get(worker.pid)
    if root is not None and root.state not in ("Z", "X"):  # (a dead one has no tree)
        worker.known = frozenset(p.key for p in proctree.descendants(worker.pid, table))
        rss = proctree.tree_rss(worker.pid, table)
        worker.peak_rss = max(worker.peak_rss, rss)
        if memory_limit is not None and rss > memory_limit:
            worker.kill("memory")
            return
    when = min(now + MEMORY_CHECK_INTERVAL, worker.deadline)
    if not math.isinf(when):
        worker.watchdog = loop.call_at(when, _watch, worker, memory_limit)
