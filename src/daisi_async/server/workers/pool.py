"""Warm worker processes for one Daisi (:class:`WorkerPool`).

See :mod:`daisi_async.server.workers` for what a pool guarantees.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from .environment import worker_environment
from .jobs import DaisiImportError, Job, Outcome, error, exchange, lost
from .limits import start_watchdog
from .process import EXIT_GRACE, WorkerProcess, launch, package_root, wait_ready

__all__ = ["MAX_WORKERS", "WorkerPool"]

_log = logging.getLogger("daisi_async.server.workers")

MAX_WORKERS = 64
"""The largest pool size accepted by :meth:`WorkerPool.resize`."""


def _as_import_error(exc: BaseException) -> DaisiImportError:
    """A failure to start a worker, as the pool reports it."""
    if isinstance(exc, DaisiImportError):
        return exc
    return DaisiImportError(error("daisi.WorkerStartError", f"could not start a worker: {exc!r}"))


class WorkerPool:
    """Warm worker processes for one Daisi (see the module docstring).

    Example:
        >>> pool = WorkerPool(name="adder", directory=Path("daisies/adder"),
        ...                   entry="app.py", on_log=print)       # doctest: +SKIP
        >>> await pool.start()                                      # doctest: +SKIP
        >>> outcome = await pool.run(Job("e1", "compute", {"x": {"json": 1}},
        ...                              timeout=30, result_path="/tmp/e1.dill"))  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        name: str,
        directory: Path,
        entry: str,
        size: int = 1,
        env: Mapping[str, str] | None = None,
        memory_limit: int | None = 8 * 2**30,
        on_log: Callable[[str, str, str], None],
        python: str = sys.executable,
    ) -> None:
        if not 1 <= size <= MAX_WORKERS:
            raise ValueError(f"pool size must be between 1 and {MAX_WORKERS}, not {size}")
        self.name = name
        self.directory = Path(directory).resolve()
        self.entry = entry
        self.memory_limit = memory_limit
        self._on_log = on_log
        self._python = python
        self._target = size
        full_env = dict(env) if env is not None else worker_environment()
        pythonpath = package_root()
        if full_env.get("PYTHONPATH"):
            pythonpath += os.pathsep + full_env["PYTHONPATH"]
        full_env["PYTHONPATH"] = pythonpath
        self._env = full_env

        self._all: set[WorkerProcess] = set()  # every worker whose process is not reaped yet
        self._workers: set[WorkerProcess] = set()  # ready, in service (idle or busy)
        self._idle: collections.deque[WorkerProcess] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[WorkerProcess]] = collections.deque()
        self._starting = 0
        self._retiring = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._start_tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._closed = False
        self._broken: DaisiImportError | None = None
        self._changed: asyncio.Event | None = None  # set (and dropped) when the pool changes

    # --- public API ----------------------------------------------------------------------

    @property
    def size(self) -> int:
        """The target number of workers."""
        return self._target

    @property
    def status(self) -> str:
        """``"increasing"`` while workers start, ``"decreasing"`` while surplus workers
        retire, else ``"ready_to_update"`` (busy workers are not a resize)."""
        if self._starting > 0:
            return "increasing"
        if self._retiring > 0 or len(self._workers) > self._target:
            return "decreasing"
        return "ready_to_update"

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers in service."""
        return sorted(w.pid for w in self._workers)

    @property
    def idle_count(self) -> int:
        """The number of workers waiting for a job."""
        return len(self._idle)

    @property
    def broken(self) -> DaisiImportError | None:
        """The import error that put the pool out of service, if any."""
        return self._broken

    async def start(self) -> None:
        """Start ``size`` workers in parallel and wait until they are ready.

        Raises :class:`DaisiImportError` if the Daisi's module fails to import;
        the pool then stays broken and :meth:`run` raises the same error.
        """
        if self._started:
            self._check_usable()
            return
        self._started = True
        count = self._target
        self._starting += count
        tasks = [asyncio.ensure_future(self._spawn()) for _ in range(count)]
        try:
            await asyncio.wait(tasks)
        except asyncio.CancelledError:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._starting -= count
            self._started = False  # start() may be called again
            for t in tasks:
                if not t.cancelled() and t.exception() is None:
                    t.result().kill()
            raise
        self._starting -= count
        failure: BaseException | None = None
        ready: list[WorkerProcess] = []
        for t in tasks:
            exc = t.exception()
            if exc is None:
                ready.append(t.result())
            elif failure is None or (
                isinstance(exc, DaisiImportError) and not isinstance(failure, DaisiImportError)
            ):
                failure = exc
        if failure is not None:
            for w in ready:
                w.kill()
            await asyncio.gather(*(w.finish(0) for w in ready), return_exceptions=True)
            broken = _as_import_error(failure)
            self._set_broken(broken)
            raise broken
        for w in ready:
            self._workers.add(w)
            self._release(w)
        self._rebalance()
        self._notify()

    async def resize(self, n: int, *, wait: bool = False) -> None:
        """Set the target number of workers (1 to 64).

        Growing starts workers in the background (``status`` is ``"increasing"``
        until they are ready); shrinking retires idle workers now and busy ones
        when their job ends. With ``wait=True``, return only once the pool has
        reached its new size.
        """
        if not 1 <= n <= MAX_WORKERS:
            raise ValueError(f"pool size must be between 1 and {MAX_WORKERS}, not {n}")
        self._check_usable()
        self._target = n
        if self._started:
            self._rebalance()
        if wait:
            while self.status != "ready_to_update" and not self._closed and self._broken is None:
                if self._changed is None:
                    self._changed = asyncio.Event()
                await self._changed.wait()
            self._check_usable()

    async def run(self, job: Job, *, on_start: Callable[[], None] | None = None) -> Outcome:
        """Run ``job`` on the next idle worker (first come, first served).

        ``on_start`` is called when a worker takes the job (it leaves the queue).

        Log lines go to ``on_log`` as they arrive. A time limit, memory limit or
        worker crash ends in a failed :class:`Outcome` and a replaced worker.
        If the awaiting task is cancelled, the worker is killed and replaced and
        :class:`asyncio.CancelledError` propagates.
        """
        worker = await self._acquire()
        try:
            if on_start is not None:
                on_start()
            outcome = await self._execute(worker, job)
        except BaseException:
            worker.kill("cancel")
            self._discard(worker)
            raise
        if worker.gone:
            self._discard(worker)
        else:
            self._release(worker)
        return outcome

    async def close(self) -> None:
        """Stop every worker: ask idle ones to exit, kill busy ones and any that
        take longer than 2 s, and reap them all."""
        if self._closed:
            await self._drain_tasks()
            return
        self._closed = True
        self._notify()
        closed = RuntimeError(f"the worker pool of {self.name!r} is closed")
        self._fail_waiters(closed)
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
        self._all.clear()
        self._workers.clear()

    # --- workers -------------------------------------------------------------------------

    def _notify(self) -> None:
        """Wake :meth:`resize` callers waiting for the pool to settle."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def _spawn(self) -> WorkerProcess:
        """Start one worker process and wait for its ``ready`` report."""
        worker = await launch(
            self._python, directory=self.directory, entry=self.entry, env=self._env
        )
        self._all.add(worker)
        self._track(self._reap_when_done(worker))
        await wait_ready(worker)
        return worker

    async def _reap_when_done(self, worker: WorkerProcess) -> None:
        await worker.proc.wait()
        worker.sweep()
        worker.gone = True
        worker.writer.close()
        self._all.discard(worker)

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
            broken = _as_import_error(exc)
            _log.warning("daisi %r: a worker failed to start: %s", self.name, broken)
            if not self._workers and self._starting == 0 and not self._closed:
                self._set_broken(broken)
            return
        self._starting -= 1
        if self._closed:
            worker.ask_exit()
            return
        self._workers.add(worker)
        self._release(worker)

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
        """Take a dead or killed worker out of service and start a replacement."""
        worker.busy = False
        if not worker.gone:
            worker.kill()
        self._workers.discard(worker)
        with contextlib.suppress(ValueError):
            self._idle.remove(worker)
        if not self._closed:
            self._rebalance()
        self._notify()

    def _rebalance(self) -> None:
        if self._closed or self._broken is not None:
            return
        while len(self._workers) + self._starting > self._target and self._idle:
            self._retire(self._idle.pop())
        while len(self._workers) + self._starting < self._target:
            self._start_background()

    def _release(self, worker: WorkerProcess) -> None:
        """A worker is free: hand it to the first waiter, or park it as idle."""
        worker.busy = False
        if worker.gone:
            return
        if self._closed or len(self._workers) + self._starting > self._target:
            self._retire(worker)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                worker.busy = True
                waiter.set_result(worker)
                return
        self._idle.append(worker)

    async def _acquire(self) -> WorkerProcess:
        while True:
            self._check_usable()
            if self._idle and not self._waiters:
                worker = self._idle.popleft()
            else:
                waiter: asyncio.Future[WorkerProcess] = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                try:
                    worker = await waiter
                except asyncio.CancelledError:
                    if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                        self._release(waiter.result())
                    else:
                        with contextlib.suppress(ValueError):
                            self._waiters.remove(waiter)
                    raise
            if worker.gone or worker.proc.returncode is not None:  # died while idle
                self._discard(worker)
                continue
            worker.busy = True
            return worker

    def _check_usable(self) -> None:
        if self._broken is not None:
            raise self._broken
        if self._closed:
            raise RuntimeError(f"the worker pool of {self.name!r} is closed")
        if not self._started:
            raise RuntimeError("WorkerPool.start() has not been called")

    def _fail_waiters(self, exc: BaseException) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(exc)

    def _set_broken(self, error: DaisiImportError) -> None:
        self._broken = error
        self._fail_waiters(error)
        self._notify()

    # --- one execution -------------------------------------------------------------------

    def _emit_log(self, eid: str, header: dict[str, Any]) -> None:
        try:
            self._on_log(eid, str(header.get("stream", "stdout")), str(header.get("line", "")))
        except Exception:
            _log.exception("daisi %r: the log callback failed", self.name)

    async def _execute(self, worker: WorkerProcess, job: Job) -> Outcome:
        start_watchdog(worker, timeout=job.timeout, memory_limit=self.memory_limit)
        try:
            outcome = await exchange(worker, job, lambda h: self._emit_log(job.eid, h))
            if outcome is None:
                outcome = await lost(worker, job, self.memory_limit)
            return outcome
        finally:
            worker.stop_watchdog()
