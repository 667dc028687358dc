"""Which worker takes a job (a part of :class:`~.pool.WorkerPool`): the callers waiting
for a worker, and the places in the workers' lanes (:mod:`.lane`).

* A job goes to an idle worker first. While the pool may still grow, a caller that
  finds none waits (and the pool starts a worker for it). Once the pool has
  ``max_workers``, a job may also go to a busy worker whose running job began less
  than :data:`~.lane.PIPELINE_WINDOW` ago, the one with the fewest jobs in its lane.
* Waiting callers are served first come, first served; those whose job a lane sent
  back (it never began) come before the others. A caller waits with its job (a
  :class:`Ticket`): the job is sent the moment a lane has room, and the caller wakes
  only once it has ended.
* A worker that becomes idle with nobody waiting takes back the jobs stuck behind long
  ones in other lanes (:meth:`Placement._steal`).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .jobs import Job, Outcome
from .lane import Entry, Requeue
from .pool_view import PoolView

if TYPE_CHECKING:
    from .process import WorkerProcess

__all__ = ["Placement", "Ticket"]


class Ticket:
    """A caller's job, waiting for a worker or sent to one."""

    __slots__ = ("entry", "future", "job", "on_log", "on_start", "worker")

    def __init__(
        self,
        job: Job,
        on_start: Callable[[], None] | None,
        on_log: Callable[[dict[str, Any]], None],
    ) -> None:
        self.job, self.on_start, self.on_log = job, on_start, on_log
        self.future: asyncio.Future[Outcome | Requeue | None] = (
            asyncio.get_running_loop().create_future()
        )
        """The job's end (see :class:`~.lane.Entry`), or why no worker could take it."""
        self.worker: WorkerProcess | None = None
        self.entry: Entry | None = None


class Placement(PoolView):
    """Where jobs go (see the module docstring; a part of :class:`~.pool.WorkerPool`)."""

    _waiters: collections.deque[Ticket]
    """Callers waiting for a worker."""
    _again: collections.deque[Ticket]
    """Callers whose job a lane sent back (it never began): served before the others."""

    def _grown(self) -> bool:
        """Whether ``max_workers`` workers are ready: only then are jobs queued on busy
        workers; before, waiting callers make the pool grow, and wait for the workers
        that are starting."""
        return len(self._workers) >= self._max

    def _hand_out(self, worker: WorkerProcess) -> bool:
        """Send waiting callers' jobs to the worker while its lane is open (beyond the
        first, only once the pool is grown); whether any was sent."""
        lane, given = worker.lane, False
        now = asyncio.get_running_loop().time()
        while (not lane.entries or self._grown()) and lane.open(now):
            ticket = self._next_waiter()
            if ticket is None:
                break
            self._send(worker, ticket)
            given = True
        return given

    def _send(self, worker: WorkerProcess, ticket: Ticket) -> None:
        """Send the ticket's job to the worker (as a sandboxed one sees it)."""
        worker.busy = True
        room, job = worker.room, ticket.job
        ticket.worker = worker
        ticket.entry = worker.lane.send(
            job if room is None else room.stage(job),
            on_start=ticket.on_start,
            on_log=ticket.on_log,
            future=ticket.future,
        )

    def _next_waiter(self) -> Ticket | None:
        """The first caller still waiting: those sent back by a lane first."""
        for queue in (self._again, self._waiters):
            while queue:
                ticket = queue.popleft()
                if not ticket.future.done():
                    return ticket
        return None

    def _fail_waiters(self, exc: BaseException) -> None:
        while (ticket := self._next_waiter()) is not None:
            ticket.future.set_exception(exc)

    def _steal(self) -> None:
        """Take back the jobs waiting behind long ones in busy lanes: they come back to
        the front of the queue (:meth:`~.pool.WorkerPool.run`), for an idle worker."""
        now = asyncio.get_running_loop().time()
        for worker in self._workers:
            if worker.busy and not worker.gone:
                worker.lane.steal(now)

    def _pick(self) -> WorkerProcess | None:
        """A worker that can take a job now: an idle one first (one that died meanwhile
        is seen by the caller), else (once the pool is grown) the open lane with the
        fewest jobs."""
        if self._idle:
            worker = self._idle.popleft()
            worker.stop_idle_timer()
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
        return best
