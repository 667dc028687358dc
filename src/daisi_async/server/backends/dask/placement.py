"""Which Dask worker runs the next execution (:class:`Placement`).

Each Dask worker offers ``slots`` (its Dask threads, or its ``daisi`` resource) and takes
:data:`~.protocol.IN_FLIGHT_PER_SLOT` executions per slot: one running, the others
waiting there for the next free worker process. Executions that find no room wait here,
first come, first served, QUEUED; the least loaded worker gets the next one. A Daisi
takes at most ``limit`` of the cluster's slots at once (``max_workers``, or
``workers.set(n)``); a pinned Daisi's ``n`` worker processes are spread over the Dask
workers (``shares``), and its executions go where its processes are. A worker that
keeps a result an execution takes as an argument is preferred when it has room (the
result is read there, not moved).

Placement is the runtime's own, not the scheduler's: a scheduler round trip per
execution is what makes a plain Dask task ~10x slower than a warm local call (see
:mod:`daisi_async.server.backends.dask`). The scheduler still decides which workers
exist, and Dask moves the code and the kept results.

Example:
    >>> link = await placement.acquire(pool, prefer=None)  # doctest: +SKIP
    >>> placement.release(link, pool)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .links import HostLink
from .protocol import IN_FLIGHT_PER_SLOT

__all__ = ["ClusterUnavailable", "Placed", "Placement"]


class ClusterUnavailable(Exception):
    """No Dask worker can take the execution (no cluster, or the scheduler was lost)."""


class Placed(Protocol):
    """What placement needs to know of a Daisi's pool."""

    key: str
    in_flight: int

    @property
    def limit(self) -> int:
        """The most of its executions that run at once, cluster-wide."""

    @property
    def shares(self) -> dict[str, int] | None:
        """Pinned: its worker processes on each Dask worker (by address); else None."""


@dataclass(eq=False)
class _Waiter:
    pool: Placed
    prefer: str | None
    resumed: bool
    """It ran before (on a worker that was lost): the scheduler's loss fails it."""
    future: asyncio.Future[HostLink]
    seq: int
    since: float = field(default_factory=time.monotonic)


class Placement:
    """The Dask workers the runtime is linked to, and the executions waiting for one."""

    def __init__(self) -> None:
        self.links: dict[str, HostLink] = {}
        self._queues: dict[Placed, collections.deque[_Waiter]] = {}
        self._seq = itertools.count()
        self.empty_since: float | None = time.monotonic()
        """Since when no Dask worker is linked (None: some are)."""

    # -- workers -------------------------------------------------------------------------
    def add(self, link: HostLink) -> None:
        """A Dask worker is linked: waiting executions may go there."""
        self.links[link.address] = link
        self.empty_since = None
        self.dispatch()

    def remove(self, link: HostLink) -> None:
        """A Dask worker's link closed."""
        if self.links.get(link.address) is link:
            del self.links[link.address]
            if not self.links:
                self.empty_since = time.monotonic()

    # -- executions ----------------------------------------------------------------------
    async def acquire(self, pool: Placed, prefer: str | None, *, resumed: bool = False) -> HostLink:
        """A worker with room for one execution of ``pool`` (counted until
        :meth:`release`); waits, first come first served, while none has room.

        Raises:
            ClusterUnavailable: see :meth:`expire` and :meth:`fail`.
        """
        if not self._queues:
            link = self._choose(pool, prefer)
            if link is not None:
                self._take(link, pool)
                return link
        waiter = _Waiter(
            pool, prefer, resumed, asyncio.get_running_loop().create_future(), next(self._seq)
        )
        self._queues.setdefault(pool, collections.deque()).append(waiter)
        self.dispatch()
        try:
            return await waiter.future
        except asyncio.CancelledError:
            future = waiter.future
            if future.done() and not future.cancelled() and future.exception() is None:
                self.release(future.result(), pool)
            raise

    def release(self, link: HostLink, pool: Placed) -> None:
        """The execution on ``link`` ended (or moved on): its room is free."""
        link.in_flight -= 1
        link.per_pool[pool.key] -= 1
        pool.in_flight -= 1
        self.dispatch()

    def _take(self, link: HostLink, pool: Placed) -> None:
        link.in_flight += 1
        link.per_pool[pool.key] += 1
        pool.in_flight += 1

    def _choose(self, pool: Placed, prefer: str | None) -> HostLink | None:
        if pool.in_flight >= pool.limit * IN_FLIGHT_PER_SLOT:
            return None
        shares = pool.shares
        best: HostLink | None = None
        for link in self.links.values():
            if link.closed or link.in_flight >= link.slots * IN_FLIGHT_PER_SLOT:
                continue
            if (
                shares is not None
                and link.per_pool[pool.key] >= shares.get(link.address, 0) * IN_FLIGHT_PER_SLOT
            ):
                continue
            if link.address == prefer:
                return link
            if best is None or link.in_flight * best.slots < best.in_flight * link.slots:
                best = link
        return best

    def dispatch(self) -> None:
        """Hand free room to the waiting executions, oldest first."""
        while self._queues:
            best: tuple[collections.deque[_Waiter], HostLink] | None = None
            for pool, queue in list(self._queues.items()):
                while queue and queue[0].future.done():
                    queue.popleft()
                if not queue:
                    del self._queues[pool]
                    continue
                if best is not None and best[0][0].seq < queue[0].seq:
                    continue
                link = self._choose(pool, queue[0].prefer)
                if link is not None:
                    best = (queue, link)
            if best is None:
                return
            queue, link = best
            waiter = queue.popleft()
            self._take(link, waiter.pool)
            waiter.future.set_result(link)

    def fail(self, exc: Exception, which: Callable[[_Waiter], bool] = lambda _w: True) -> None:
        """Fail the waiting executions ``which`` selects with ``exc``."""
        for queue in self._queues.values():
            for waiter in list(queue):
                if not waiter.future.done() and which(waiter):
                    waiter.future.set_exception(exc)

    def fail_pool(self, pool: Placed, exc: Exception) -> None:
        """Fail the executions of ``pool`` that wait (its pool retired or closed)."""
        self.fail(exc, lambda w: w.pool is pool)

    def fail_resumed(self, exc: Exception) -> None:
        """Fail the waiting executions that had started on a worker since lost."""
        self.fail(exc, lambda w: w.resumed)

    def expire(self, wait: float, why: Callable[[], str]) -> None:
        """With no worker linked for ``wait`` seconds, fail the executions that waited
        that long, with :class:`ClusterUnavailable` (``why()`` says what is wrong)."""
        if self.empty_since is None:
            return
        now = time.monotonic()
        if now - self.empty_since < wait:
            return
        old = [w for q in self._queues.values() for w in q if now - w.since >= wait]
        if old:
            exc = ClusterUnavailable(f"no Dask worker was available for {wait:g} s: {why()}")
            ids = {id(w) for w in old}
            self.fail(exc, lambda w: id(w) in ids)
