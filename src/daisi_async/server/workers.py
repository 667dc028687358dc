"""Warm worker processes for one Daisi.

A :class:`WorkerPool` keeps ``size`` worker processes (see
:mod:`daisi_async.server._worker_main`) that have imported the Daisi's entry
module once and run executions one at a time. The pool

* hands jobs to idle workers first come, first served;
* relays each log line to ``on_log`` as the worker prints it;
* enforces a time limit and a memory limit per execution by killing the worker;
  the memory limit counts the resident memory of the worker and of every process
  below it;
* replaces workers that die, time out, exceed their memory or are cancelled;
* never unpickles anything: argument bytes go to the worker as they are, and
  results come back as dill bytes (plus JSON text when the result is plain JSON).

Processes a Daisi starts belong to the worker (see :mod:`daisi_async.server.proctree`):

* a worker is a child subreaper, so orphans and daemons that left their session
  stay below it; at the end of each execution it kills (and reaps) every process
  the execution started, before it reports the result. Processes started at import
  time live as long as their worker.
* killing a worker kills its whole tree (frozen first, descendants before the
  worker), and a worker that exits kills its tree first;
* a worker notices at once when the server dies (even by SIGKILL), kills its tree
  and exits;
* a worker that dies by itself (a crash) leaves orphans to init: the pool then kills
  its process group and the processes it last saw below the worker (it looks every
  ``MEMORY_CHECK_INTERVAL`` while the worker is busy).

Workers get an allowlisted environment (:mod:`daisi_async.server.worker_env`), not
the server's. Each worker runs in its own session (process group). Worker stdout
(fd 1) goes to ``/dev/null``; worker stderr (fd 2) is the server's stderr, so a
worker that dies hard leaves its last words in the server's log. Everything a
Daisi prints through ``sys.stdout``, ``sys.stderr`` or ``logging`` during an
execution is captured and relayed instead.

The pool is asyncio-only and must be used from one event loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import daisi_async

from . import proctree
from ._frames import FrameError, encode_head, read_frame_async
from .worker_env import worker_environment

__all__ = ["DaisiImportError", "Job", "Outcome", "WorkerPool"]

_log = logging.getLogger(__name__)

MAX_WORKERS = 64
"""The largest pool size accepted by :meth:`WorkerPool.resize`."""

MEMORY_CHECK_INTERVAL = 0.25
"""Seconds between two checks of a busy worker's resident memory (its whole tree)."""

SCAN_MAX_AGE = 0.1
"""Memory checks within this many seconds of each other share one scan of ``/proc``."""

EXIT_GRACE = 2.0
"""Seconds a worker is given to exit when asked, before it is killed."""

_WORKER_MODULE = "daisi_async.server._worker_main"


@dataclass
class Job:
    """One execution to run on a worker.

    ``args`` maps each argument name to one of ``{"json": value}`` (a JSON
    value), ``{"file": "/abs/path"}`` (dill bytes in a file) or
    ``{"bytes": b"..."}`` (dill bytes in memory; sent within the frame body).
    """

    eid: str
    endpoint: str
    args: dict[str, dict[str, Any]]
    timeout: float
    """Time limit of this execution, in seconds."""
    result_path: str
    """Where the worker writes the dill bytes of a result larger than ``inline_limit``."""
    inline_limit: int = 65536
    """Results up to this many dill bytes come back in memory (:attr:`Outcome.result`)."""


@dataclass
class Outcome:
    """How an execution ended.

    On success exactly one of ``result`` (small dill bytes) and ``result_file``
    (a file holding the dill bytes) is set; ``result_json`` also holds the JSON
    text of the result when the result is a plain JSON value that fits within
    the job's ``inline_limit``. On failure ``error`` is ``{"type", "message",
    "traceback"}``; types starting with ``daisi.`` come from the runtime
    (``daisi.ArgumentError``, ``daisi.ResultError``, ``daisi.TimeLimitExceeded``,
    ``daisi.MemoryLimitExceeded``, ``daisi.WorkerCrashed``,
    ``daisi.WorkerStopped``), the others name the exception the Daisi raised
    (``builtins.ZeroDivisionError``).
    """

    ok: bool
    result: bytes | None = None
    result_file: str | None = None
    result_size: int = 0
    result_json: str | None = None
    error: dict[str, str] | None = None


class DaisiImportError(Exception):
    """The Daisi's module could not be imported by a worker.

    ``error`` is ``{"type", "message", "traceback"}``, as reported by the worker.
    """

    def __init__(self, error: dict[str, str]) -> None:
        self.error = error
        super().__init__(f"{error.get('type', 'Error')}: {error.get('message', '')}")


def _error(kind: str, message: str, tb: str = "") -> dict[str, str]:
    return {"type": kind, "message": message, "traceback": tb}


def _clean_error(raw: object) -> dict[str, str]:
    """The error dict of a worker frame, with every field a string."""
    if not isinstance(raw, dict):
        return _error("daisi.WorkerCrashed", "the worker reported a malformed error")
    return {key: str(raw.get(key, "")) for key in ("type", "message", "traceback")}


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "exit status unknown"
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _format_bytes(n: int) -> str:
    if n % 2**30 == 0:
        return f"{n // 2**30} GiB"
    if n >= 2**20:
        return f"{n / 2**20:.0f} MiB"
    return f"{n} bytes"


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


def _kill_worker_tree(pid: int) -> None:
    """SIGKILL a worker, everything below it, and its process group."""
    proctree.kill_tree(pid, timeout=0.5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _package_root() -> str:
    """The directory that holds the ``daisi_async`` package (for the workers' PYTHONPATH)."""
    return str(Path(daisi_async.__file__).resolve().parent.parent)


class _Worker:
    """One worker process and its socket; no task of its own."""

    __slots__ = (
        "busy",
        "deadline",
        "gone",
        "kill_reason",
        "known",
        "peak_rss",
        "pid",
        "proc",
        "reader",
        "watchdog",
        "writer",
    )

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.reader = reader
        self.writer = writer
        self.busy = False
        self.gone = False  # killed, retired or dead: never given another job
        self.kill_reason: str | None = None  # "time", "memory", "close", "cancel", "protocol"
        self.watchdog: asyncio.TimerHandle | None = None  # time and memory limits of the job
        self.deadline = math.inf
        self.peak_rss = 0
        self.known: frozenset[tuple[int, int]] = frozenset()  # processes last seen below it

    def kill(self, reason: str | None = None) -> None:
        """SIGKILL the worker's process tree and close the socket."""
        if reason is not None and self.kill_reason is None and not self.gone:
            self.kill_reason = reason
        self.gone = True
        if self.proc.returncode is None:
            _kill_worker_tree(self.pid)
        self.stop_watchdog()
        self.writer.close()

    def sweep(self) -> None:
        """After the worker exited: kill what it may have left to init."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.known:
            proctree.kill_known(self.known)
            self.known = frozenset()

    def stop_watchdog(self) -> None:
        """Cancel the job's time and memory checks."""
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None

    def ask_exit(self) -> None:
        """Ask the worker to leave its loop and exit."""
        self.gone = True
        if not self.writer.is_closing():
            with contextlib.suppress(Exception):
                self.writer.write(encode_head({"op": "exit"}))
            self.writer.close()

    async def finish(self, grace: float) -> int:
        """Wait up to ``grace`` seconds for the process to exit, then kill it; reap it."""
        if self.proc.returncode is None and grace > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.proc.wait()), grace)
        if self.proc.returncode is None:
            self.kill()
        return await self.proc.wait()


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
        pythonpath = _package_root()
        if full_env.get("PYTHONPATH"):
            pythonpath += os.pathsep + full_env["PYTHONPATH"]
        full_env["PYTHONPATH"] = pythonpath
        self._env = full_env

        self._all: set[_Worker] = set()  # every worker whose process is not reaped yet
        self._workers: set[_Worker] = set()  # ready, in service (idle or busy)
        self._idle: collections.deque[_Worker] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[_Worker]] = collections.deque()
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
        ready: list[_Worker] = []
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
            error = (
                failure
                if isinstance(failure, DaisiImportError)
                else DaisiImportError(
                    _error("daisi.WorkerStartError", f"could not start a worker: {failure!r}")
                )
            )
            self._set_broken(error)
            raise error
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

    async def _spawn(self) -> _Worker:
        """Start one worker process and wait for its ``ready`` report."""
        parent, child = socket.socketpair()
        try:
            proc = await asyncio.create_subprocess_exec(
                self._python,
                "-m",
                _WORKER_MODULE,
                "--fd",
                str(child.fileno()),
                "--dir",
                str(self.directory),
                "--entry",
                self.entry,
                pass_fds=[child.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=None,
                cwd=str(self.directory),
                env=self._env,
                start_new_session=True,
            )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        try:
            reader, writer = await asyncio.open_connection(sock=parent)
        except BaseException:
            parent.close()
            _kill_worker_tree(proc.pid)
            raise
        worker = _Worker(proc, reader, writer)
        self._all.add(worker)
        self._track(self._reap_when_done(worker))
        try:
            frame = await read_frame_async(reader)
        except (FrameError, OSError):
            frame = None
        except BaseException:
            worker.kill()
            raise
        if frame is not None and frame[0].get("op") == "ready":
            return worker
        if frame is not None and frame[0].get("op") == "import_error":
            worker.gone = True
            await worker.finish(EXIT_GRACE)
            raise DaisiImportError(_clean_error(frame[0].get("error")))
        worker.gone = True
        returncode = await worker.finish(1.0)
        raise DaisiImportError(
            _error(
                "daisi.WorkerCrashed",
                f"the worker process died while importing the Daisi ({_describe_exit(returncode)})",
            )
        )

    async def _reap_when_done(self, worker: _Worker) -> None:
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
            error = (
                exc
                if isinstance(exc, DaisiImportError)
                else DaisiImportError(
                    _error("daisi.WorkerStartError", f"could not start a worker: {exc!r}")
                )
            )
            _log.warning("daisi %r: a worker failed to start: %s", self.name, error)
            if not self._workers and self._starting == 0 and not self._closed:
                self._set_broken(error)
            return
        self._starting -= 1
        if self._closed:
            worker.ask_exit()
            return
        self._workers.add(worker)
        self._release(worker)

    def _retire(self, worker: _Worker) -> None:
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

    def _discard(self, worker: _Worker) -> None:
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

    def _release(self, worker: _Worker) -> None:
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

    async def _acquire(self) -> _Worker:
        while True:
            self._check_usable()
            if self._idle and not self._waiters:
                worker = self._idle.popleft()
            else:
                waiter: asyncio.Future[_Worker] = asyncio.get_running_loop().create_future()
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

    def _watch(self, worker: _Worker) -> None:
        """The job's watchdog: enforce the time limit; every 0.25 s, measure the
        worker's tree (its resident memory against the limit) and note which
        processes are below the worker (to kill them should the worker crash).

        One timer per running job, rescheduled at the next check or the deadline.
        """
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
            limit = self.memory_limit
            if limit is not None and rss > limit:
                worker.kill("memory")
                return
        when = min(now + MEMORY_CHECK_INTERVAL, worker.deadline)
        if not math.isinf(when):
            worker.watchdog = loop.call_at(when, self._watch, worker)

    def _emit_log(self, eid: str, header: dict[str, Any]) -> None:
        try:
            self._on_log(eid, str(header.get("stream", "stdout")), str(header.get("line", "")))
        except Exception:
            _log.exception("daisi %r: the log callback failed", self.name)

    async def _execute(self, worker: _Worker, job: Job) -> Outcome:
        loop = asyncio.get_running_loop()
        args: dict[str, Any] = {}
        bodies: list[bytes] = []
        offset = 0
        for arg_name, spec in job.args.items():
            if "bytes" in spec:
                data = spec["bytes"]
                args[arg_name] = {"body": [offset, len(data)]}
                bodies.append(data)
                offset += len(data)
            else:
                args[arg_name] = spec
        head = encode_head(
            {
                "op": "run",
                "eid": job.eid,
                "endpoint": job.endpoint,
                "args": args,
                "result_path": job.result_path,
                "inline_limit": job.inline_limit,
            },
            offset,
        )
        now = loop.time()
        worker.deadline = now + max(job.timeout, 0.0)
        worker.peak_rss = 0
        worker.watchdog = loop.call_at(
            min(worker.deadline, now + MEMORY_CHECK_INTERVAL), self._watch, worker
        )
        try:
            try:
                worker.writer.write(head)
                for data in bodies:
                    worker.writer.write(data)
                await worker.writer.drain()
            except (ConnectionError, OSError):
                pass  # the worker is gone: the read below sees the end of the stream
            reader = worker.reader
            while True:
                try:
                    frame = await read_frame_async(reader)
                except FrameError:
                    worker.kill("protocol")
                    frame = None
                except (ConnectionError, OSError):
                    frame = None
                if frame is None:
                    return await self._lost(worker, job)
                header, body = frame
                op = header.get("op")
                if op == "log":
                    if header.get("eid") == job.eid:
                        self._emit_log(job.eid, header)
                elif op == "done" and header.get("eid") == job.eid:
                    return self._done(header, body)
        finally:
            worker.stop_watchdog()

    @staticmethod
    def _done(header: dict[str, Any], body: bytes) -> Outcome:
        if not header.get("ok"):
            return Outcome(ok=False, error=_clean_error(header.get("error")))
        file = header.get("file")
        json_text = header.get("json")
        return Outcome(
            ok=True,
            result=None if file else body,
            result_file=str(file) if file else None,
            result_size=int(header.get("size", len(body))),
            result_json=json_text if isinstance(json_text, str) else None,
        )

    async def _lost(self, worker: _Worker, job: Job) -> Outcome:
        """The worker's stream ended during ``job``: say why."""
        reason = worker.kill_reason
        if reason is None:
            worker.gone = True
            returncode = await worker.finish(1.0)
            worker.sweep()  # before the crash is reported
            return Outcome(
                ok=False,
                error=_error(
                    "daisi.WorkerCrashed",
                    "the worker process died while running this execution "
                    f"({_describe_exit(returncode)})",
                ),
            )
        if reason == "time":
            return Outcome(
                ok=False,
                error=_error(
                    "daisi.TimeLimitExceeded",
                    f"execution exceeded its time limit of {job.timeout:g} s",
                ),
            )
        if reason == "memory":
            limit = self.memory_limit or 0
            return Outcome(
                ok=False,
                error=_error(
                    "daisi.MemoryLimitExceeded",
                    f"execution exceeded its memory limit of {_format_bytes(limit)} (the "
                    "resident memory of the worker and its child processes reached "
                    f"{_format_bytes(worker.peak_rss)})",
                ),
            )
        if reason == "protocol":
            return Outcome(
                ok=False,
                error=_error("daisi.WorkerCrashed", "the worker process sent a malformed message"),
            )
        return Outcome(
            ok=False,
            error=_error(
                "daisi.WorkerStopped",
                "the worker pool was shut down while this execution was running",
            ),
        )
