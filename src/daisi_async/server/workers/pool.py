"""Warm worker processes for one Daisi (:class:`WorkerPool`): started on demand, scaled
with the queue, stopped when idle.

* **On demand**: :meth:`WorkerPool.start` starts ``min_workers`` workers in the
  background and returns at once. A call that finds no idle worker waits in the queue
  while the pool starts one more, up to ``max_workers``, first come, first served.
  A worker runs one execution at a time; once the pool has ``max_workers``, jobs also
  queue on busy workers whose job just began (:mod:`.placement`, :mod:`.lane`).
* **Idle**: a worker idle for ``idle_timeout`` seconds exits, down to ``min_workers``.
* **Pinned**: :meth:`WorkerPool.pin` (``workers.set(n)``) makes ``min_workers =
  max_workers = n`` until pinned again.
* **Imports**: a worker whose import takes longer than ``import_timeout`` seconds is
  killed. A failed start (an import error, the time limit, a crash) fails the calls
  waiting for it when no other worker can take them, and is tried again by a later
  call after a backoff (:mod:`.backoff`: 1 s, doubling up to 60 s): a call arriving
  during the backoff fails at once with the last import error.
  :meth:`WorkerPool.pin` tries again at once.
* **Retired**: :meth:`WorkerPool.retire` (the Daisi was edited or removed) sends the
  waiting calls back with :class:`PoolRetired` (those queued on a worker too, unless
  their job has begun) and lets the running ones finish.

See :mod:`daisi_async.server.workers` for limits and containment.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..._dispatch import Signal
from .backoff import Backoff, as_import_error
from .environment import worker_environment
from .jobs import DaisiImportError, Job, Outcome, lost
from .lane import Lane, Requeue
from .placement import Placement, Ticket
from .process import EXIT_GRACE, WorkerProcess, launch, package_root, wait_ready

if TYPE_CHECKING:
    from .sandbox import Sandbox

__all__ = ["MAX_WORKERS", "PoolRetired", "WorkerPool"]

_log = logging.getLogger("daisi_async.server.workers")

MAX_WORKERS = 64
"""The most workers a pool may have."""


class PoolRetired(Exception):
    """The pool was retired (its Daisi was edited or removed) before a worker took the job."""


def _check_counts(low: int, high: int) -> None:
    if not 1 <= high <= MAX_WORKERS:
        raise ValueError(f"max_workers must be between 1 and {MAX_WORKERS}, not {high}")
    if not 0 <= low <= high:
        raise ValueError(f"min_workers must be between 0 and max_workers ({high}), not {low}")


class WorkerPool(Placement):
    """Worker processes for one Daisi (see the module docstring).

    Example:
        >>> pool = WorkerPool(name="adder", directory=Path("daisies/adder"), entry="app.py",
        ...                   on_log=print, max_workers=4)                # doctest: +SKIP
        >>> pool.start()                                                  # doctest: +SKIP
        >>> outcome = await pool.run(Job("e1", "compute", {"x": {"json": 1}},
        ...                              timeout=30, result_path="/tmp/e1.dill"))  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        name: str,
        directory: Path,
        entry: str,
        env: Mapping[str, str] | None = None,
        memory_limit: int | None = 8 * 2**30,
        on_log: Callable[[str, str, str], None],
        on_output: Callable[[str, str], None] | None = None,
        python: str = sys.executable,
        interpreter: Callable[[], Awaitable[tuple[str, Mapping[str, str]]]] | None = None,
        min_workers: int = 0,
        max_workers: int = 1,
        idle_timeout: float | None = 600.0,
        import_timeout: float | None = 60.0,
        sandbox: Sandbox | None = None,
    ) -> None:
        _check_counts(min_workers, max_workers)
        self.name, self.entry, self.memory_limit = name, entry, memory_limit
        self.directory = Path(directory).resolve()
        self.idle_timeout = idle_timeout
        """Seconds an idle worker waits for a job before it exits (None: forever)."""
        self.import_timeout = import_timeout
        """Seconds a worker may take to import the Daisi (None: no limit)."""
        self._on_log, self._on_output, self._python = on_log, on_output, python
        self._sandbox = sandbox
        """Workers run in this sandbox (None: not sandboxed)."""
        self._interpreter = interpreter
        """Called before each worker starts: ``(python, extra environment)``, e.g. once the
        Daisi's own environment is built; raises :class:`DaisiImportError` if it can't be."""
        self._min, self._max, self._pinned = min_workers, max_workers, False
        full_env = dict(env) if env is not None else worker_environment()
        pythonpath = package_root()
        if full_env.get("PYTHONPATH"):
            pythonpath += os.pathsep + full_env["PYTHONPATH"]
        full_env["PYTHONPATH"] = pythonpath
        self._env = full_env

        self._all: set[WorkerProcess] = set()  # every worker whose process is not reaped yet
        self._workers: set[WorkerProcess] = set()  # ready, in service (idle or busy)
        self._idle: collections.deque[WorkerProcess] = collections.deque()
        self._waiters: collections.deque[Ticket] = collections.deque()
        self._again: collections.deque[Ticket] = collections.deque()
        self._starting = 0
        self._retiring = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._start_tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._retired = False
        self._closed = False
        self._backoff = Backoff()
        self._changed = Signal()  # fired when the pool changes

    # --- changing it ----------------------------------------------------------------------

    def start(self) -> None:
        """Start ``min_workers`` workers in the background (call from the event loop)."""
        if not self._started:
            self._started = True
            self._rebalance()

    async def warm(self) -> None:
        """Wait until ``min_workers`` workers are ready.

        Raises:
            DaisiImportError: a start failed and no worker is left starting.
        """
        while len(self._workers) < self._min:
            self._check_usable()
            if not self._starting and self._backoff.failure is not None:
                raise self._backoff.failure
            await self._wait_change()

    def pin(self, n: int) -> None:
        """Keep exactly ``n`` workers (1 to 64) until pinned again; a pool whose last start
        failed tries again at once. Growing starts workers in the background; shrinking
        retires idle workers now and busy ones when their job ends."""
        _check_counts(n, n)
        self._check_usable(started=False)
        self._min = self._max = n
        self._pinned = True
        self._backoff.retry_at = 0.0
        self._started = True
        self._rebalance()
        self._notify()

    async def resize(self, n: int, *, wait: bool = False) -> None:
        """:meth:`pin` ``n``; with ``wait=True``, return once the pool has ``n`` workers.

        Raises:
            DaisiImportError: ``wait`` and a start failed with no worker left.
        """
        self.pin(n)
        while wait and (self.status != "ready_to_update" or len(self._workers) != n):
            self._check_usable()
            if self.broken is not None:
                raise self.broken
            await self._wait_change()

    async def run(self, job: Job, *, on_start: Callable[[], None] | None = None) -> Outcome:
        """Run ``job`` on the next worker that can take it (first come, first served),
        starting one if none can and the pool may grow.

        A worker takes a job while idle, or, once the pool has ``max_workers``, while
        its running job began moments ago (the job then waits in its lane:
        :mod:`.lane`). ``on_start`` is called when the
        job begins on the worker (it leaves the queue). Log lines go to ``on_log`` as
        they arrive. A time limit, memory limit or worker crash ends in a failed
        :class:`Outcome` and the worker's end; jobs that had not begun on that worker
        go back to the front of the queue. If the awaiting task is cancelled, the job
        is taken back if it has not begun, else its worker is killed; then
        :class:`asyncio.CancelledError` propagates.

        Raises:
            DaisiImportError: no worker could import the Daisi for this job.
            PoolRetired: the pool was retired before a worker took the job.
        """
        on_log = functools.partial(self._emit_log, job.eid)
        again = False
        while True:
            ticket = Ticket(job, on_start, on_log)
            self._place(ticket, again=again)
            try:
                result = await ticket.future
            except BaseException:
                self._abandon(ticket)
                raise
            worker = ticket.worker
            assert worker is not None  # (the future ends with a result once it is sent)
            room = worker.room
            if not isinstance(result, Requeue):
                break
            if room is not None:
                room.clear(job)
            again = True  # it never began: back to the front of the queue
        outcome: Outcome | None = None
        try:
            if result is None:  # the worker was lost while the job ran
                outcome = await lost(worker, job, self.memory_limit)
            else:
                outcome = result if room is None else room.collect(result, job)
            return outcome
        finally:
            if room is not None:
                room.clear(job, ended_well=outcome is not None and outcome.ok)
            if worker.gone:
                self._discard(worker)

    async def retire(self) -> None:
        """Take no more work: waiting calls get :class:`PoolRetired`, idle workers exit,
        busy ones exit when their job ends. Returns once every worker has exited."""
        if self._retired or self._closed:
            return
        self._retired = True
        self._fail_waiters(PoolRetired(f"the workers of {self.name!r} were replaced"))
        now = asyncio.get_running_loop().time()
        for worker in self._workers:  # jobs queued on workers that have not begun come back
            worker.lane.steal(now, every=True)  # (and find the pool retired)
        for t in list(self._start_tasks):
            t.cancel()
        while self._idle:
            self._retire(self._idle.pop())
        while self._all and not self._closed:
            await self._wait_change()
        await self._drain_tasks()

    async def close(self) -> None:
        """Stop every worker: ask idle ones to exit, kill busy ones and any that
        take longer than 2 s, and reap them all."""
        if self._closed:
            await self._drain_tasks()
            return
        self._closed = True
        self._notify()
        self._fail_waiters(RuntimeError(f"the worker pool of {self.name!r} is closed"))
        for t in list(self._start_tasks):
            t.cancel()
        for w in list(self._all):
            if w.busy:
                w.kill("close")
            elif not w.gone:
                w.ask_exit()
        self._idle.clear()
        await asyncio.gather(
            *(w.finish(EXIT_GRACE) for w in list(self._all)), return_exceptions=True
        )
        await self._drain_tasks()
        for w in list(self._all):
            await w.finish(0)
            w.writer.close()
            lane: Lane | None = getattr(w, "lane", None)  # (none if it never got ready)
            if lane is not None:
                await lane.close()
        self._all.clear()
        self._workers.clear()

    # --- workers -------------------------------------------------------------------------

    def _notify(self) -> None:
        """Wake the callers waiting for the pool to change."""
        self._changed.fire()

    async def _wait_change(self) -> None:
        await self._changed.wait()

    async def _spawn(self) -> WorkerProcess:
        """Start one worker process and wait for its ``ready`` report."""
        python, env = self._python, self._env
        if self._interpreter is not None:
            python, extra = await self._interpreter()
            env = {**env, **extra}
        worker = await launch(
            python, directory=self.directory, entry=self.entry, env=env, sandbox=self._sandbox
        )
        self._all.add(worker)
        self._track(self._reap_when_done(worker))
        await wait_ready(worker, on_output=self._on_output, timeout=self.import_timeout)
        return worker

    async def _reap_when_done(self, worker: WorkerProcess) -> None:
        await worker.proc.wait()
        worker.sweep()
        worker.release_room()
        worker.gone = True
        worker.writer.close()
        self._all.discard(worker)
        if worker in self._workers and not worker.busy:  # died while idle
            self._discard(worker)
        self._notify()

    def _track(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _drain_tasks(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _start_background(self) -> None:
        self._starting += 1
        task = self._track(self._start_one())
        self._start_tasks.add(task)
        task.add_done_callback(self._start_tasks.discard)

    async def _start_one(self) -> None:
        try:
            await self._start_one_inner()
        finally:
            self._notify()

    async def _start_one_inner(self) -> None:
        try:
            worker = await self._spawn()
        except asyncio.CancelledError:
            self._starting -= 1
            raise
        except Exception as exc:
            self._starting -= 1
            self._start_failed(as_import_error(exc))
            return
        self._starting -= 1
        self._backoff.succeeded()
        if self._closed or self._retired:
            worker.ask_exit()
            return
        worker.lane = Lane(
            worker, memory_limit=self.memory_limit, on_free=self._freed, on_end=self._lane_ended
        )
        self._workers.add(worker)
        self._release(worker)

    def _start_failed(self, failure: DaisiImportError) -> None:
        loop = asyncio.get_running_loop()
        self._backoff.failed(failure, now=loop.time())
        wait = max(self._backoff.retry_at - loop.time(), 0.0)
        details = failure.error.get("traceback") or str(failure)
        _log.warning(
            "Daisi %s: a worker failed to start (no new attempt for %.0f s):\n%s",
            self.name, wait, details.rstrip(),
        )  # fmt: skip
        if not self._workers and self._starting == 0:
            self._fail_waiters(failure)

    def _retire(self, worker: WorkerProcess) -> None:
        """Take an idle worker out of service and let it exit."""
        self._workers.discard(worker)
        with contextlib.suppress(ValueError):
            self._idle.remove(worker)
        worker.ask_exit()
        self._retiring += 1

        async def wait_exit() -> None:
            try:
                await worker.finish(EXIT_GRACE)
            finally:
                self._retiring -= 1
                self._notify()

        self._track(wait_exit())

    def _discard(self, worker: WorkerProcess) -> None:
        """Take a dead or killed worker out of service (a replacement starts if needed)."""
        worker.busy = False
        if not worker.gone:
            worker.kill()
        self._workers.discard(worker)
        with contextlib.suppress(ValueError):
            self._idle.remove(worker)
        self._rebalance()
        self._notify()

    def _rebalance(self) -> None:
        """Retire surplus idle workers; start the workers the queue and ``min_workers`` ask
        for, up to ``max_workers`` (none during a backoff)."""
        if self._closed or self._retired or not self._started:
            return
        while len(self._workers) + self._starting > self._max and self._idle:
            self._retire(self._idle.pop())
        busy = len(self._workers) - len(self._idle)
        wanted = min(self._max, max(self._min, busy + len(self._waiters) + len(self._again)))
        missing = wanted - len(self._workers) - self._starting
        if missing > 0 and not self._backoff.waiting(asyncio.get_running_loop().time()):
            for _ in range(missing):
                self._start_background()

    def _release(self, worker: WorkerProcess) -> None:
        """A worker's lane is empty: hand it to waiting callers, or park it as idle (and
        let it take the jobs stuck behind a long one elsewhere: :meth:`_steal`)."""
        worker.busy = False
        if worker.gone:
            return
        if self._closed or self._retired or len(self._workers) + self._starting > self._max:
            self._retire(worker)
            return
        if self._hand_out(worker):
            return
        self._idle.append(worker)
        if self.idle_timeout is not None:
            loop = asyncio.get_running_loop()
            worker.idle_timer = loop.call_later(self.idle_timeout, self._idle_expired, worker)
        self._steal()

    def _freed(self, worker: WorkerProcess) -> None:
        """A job left the worker's lane (the lane calls this)."""
        if not worker.lane.entries:
            self._release(worker)
        elif not worker.gone:
            self._hand_out(worker)

    def _lane_ended(self, worker: WorkerProcess) -> None:
        """The worker's stream ended (the lane calls this)."""
        if worker in self._workers:
            self._discard(worker)

    def _idle_expired(self, worker: WorkerProcess) -> None:
        """An idle worker waited ``idle_timeout`` seconds: it exits, unless it is one of
        the ``min_workers``."""
        worker.idle_timer = None
        if worker in self._idle and len(self._workers) + self._starting > self._min:
            self._retire(worker)
            self._notify()

    def _place(self, ticket: Ticket, *, again: bool = False) -> None:
        """Send the ticket's job to a worker that can take it now, else queue it (at the
        front with ``again``: a lane sent it back) and grow the pool if it may.

        Raises:
            DaisiImportError: the last start failed, no worker is left and the backoff
                is not over.
            PoolRetired: the pool was retired.
        """
        self._check_usable()
        while not (self._waiters or self._again) and (worker := self._pick()) is not None:
            if worker.gone or worker.proc.returncode is not None:  # died while idle
                self._discard(worker)
                continue
            self._send(worker, ticket)
            return
        failure = self._backoff.failure
        loop = asyncio.get_running_loop()
        if failure and not (self._workers or self._starting) and self._backoff.waiting(loop.time()):
            raise failure
        (self._again if again else self._waiters).append(ticket)
        self._rebalance()

    def _abandon(self, ticket: Ticket) -> None:
        """The caller stopped waiting: take its job out of the queue, or back from its
        worker (:meth:`~.lane.Lane.withdraw`)."""
        worker, entry = ticket.worker, ticket.entry
        if worker is None or entry is None:
            for queue in (self._again, self._waiters):
                with contextlib.suppress(ValueError):
                    queue.remove(ticket)
            return
        worker.lane.withdraw(entry)
        if worker.room is not None:
            worker.room.clear(ticket.job)
        if worker.gone:
            self._discard(worker)

    def _check_usable(self, *, started: bool = True) -> None:
        if self._closed:
            raise RuntimeError(f"the worker pool of {self.name!r} is closed")
        if self._retired:
            raise PoolRetired(f"the workers of {self.name!r} were replaced")
        if started and not self._started:
            raise RuntimeError("WorkerPool.start() has not been called")

    # --- one execution -------------------------------------------------------------------

    def _emit_log(self, eid: str, header: dict[str, Any]) -> None:
        try:
            self._on_log(eid, str(header.get("stream", "stdout")), str(header.get("line", "")))
        except Exception:
            _log.exception("daisi %r: the log callback failed", self.name)
