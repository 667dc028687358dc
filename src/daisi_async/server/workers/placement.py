"""Which worker takes a job (a part of :class:`~.pool.WorkerPool`): the callers waiting
for a worker, and the places in the workers' lanes (:mod:`.lane`).

* A job goes to an idle worker first. While the pool may still grow, a caller that
  finds none waits (and the pool starts a worker for it). Once the pool has
  ``max_workers``, a job may also go to a busy worker whose running job began less
  than :data:`~.lane.PIPELINE_WINDOW` ago, the one with the fewest jobs in its lane.
* Waiting callers are served first come, first served; those whose job a lane sent
  back (it never began) come before the others.
* A worker that becomes idle with nobody waiting takes back the jobs stuck behind long
  ones in other lanes (:meth:`Placement._steal`).
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING

from .pool_view import PoolView

if TYPE_CHECKING:
    from .process import WorkerProcess

__all__ = ["Placement"]


class Placement(PoolView):
    """Where jobs go (see the module docstring; a part of :class:`~.pool.WorkerPool`)."""

    _waiters: collections.deque[asyncio.Future[WorkerProcess]]
    """Callers waiting for a worker."""
    _again: collections.deque[asyncio.Future[WorkerProcess]]
    """Callers whose job a lane sent back (it never began): served before the others."""

    def _grown(self) -> bool:
        """Whether the pool has (or is starting) ``max_workers``: only then are jobs
        queued on busy workers; before, waiting callers make the pool grow."""
        return len(self._workers) + self._starting >= self._max

    def _hand_out(self, worker: WorkerProcess) -> bool:
        """Give places in the worker's lane to waiting callers while it is open (beyond
        the first, only once the pool is grown); whether any got one."""
        lane, given = worker.lane, False
        now = asyncio.get_running_loop().time()
        while (lane.idle or self._grown()) and lane.open(now):
            waiter = self._next_waiter()
            if waiter is None:
                break
            lane.reserved += 1
            worker.busy = given = True
            waiter.set_result(worker)
        return given

    def _next_waiter(self) -> asyncio.Future[WorkerProcess] | None:
        """The first caller still waiting: those sent back by a lane first."""
        for queue in (self._again, self._waiters):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    return waiter
        return None

    def _fail_waiters(self, exc: BaseException) -> None:
        while (waiter := self._next_waiter()) is not None:
            waiter.set_exception(exc)

    def _steal(self) -> None:
        """Take back the jobs waiting behind long ones in busy lanes: they come back to
        the front of the queue (:meth:`~.pool.WorkerPool.run`), for an idle worker."""
        now = asyncio.get_running_loop().time()
        for worker in self._workers:
            if worker.busy and not worker.gone:
                worker.lane.steal(now)

    def _pick(self) -> WorkerProcess | None:
        """A worker that can take a job now, with a place reserved in its lane: an idle
        one first, else (once the pool is grown) the open lane with the fewest jobs."""
        if self._idle:  # (one that died meanwhile is seen by the caller)
            worker = self._idle.popleft()
            worker.stop_idle_timer()
            worker.busy = True
            worker.lane.reserved += 1
            return worker
        if not self._grown():
            return None
        now = asyncio.get_running_loop().time()
        best: WorkerProcess | None = None
        for worker in self._workers:
            lane = worker.lane
            if (
                worker.busy
                and not worker.gone
                and lane.open(now)
                and (best is None or len(lane.entries) < len(best.lane.entries))
            ):
                best = worker
        if best is not None:
            best.lane.reserved += 1
        return best
