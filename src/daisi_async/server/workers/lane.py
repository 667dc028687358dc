"""A worker's lane (:class:`Lane`): the jobs sent to one worker and not yet done, and the
one task that reads the worker's frames.

A worker runs its jobs one at a time, in the order they were sent, but the pool may
send a job while the worker is still busy with others (up to :data:`PIPELINE_DEPTH`
jobs in a lane, and only behind a job that began less than :data:`PIPELINE_WINDOW`
seconds ago): the next job is then already in the worker's socket when the previous
one ends, so the worker goes on without waiting for the server, and the server reads
several ``done`` frames per wake-up.

What the server knows of each job is exact:

* **Begun.** A job sent to a worker with an empty lane begins when it arrives. A job
  sent behind others (``"queued": true``) begins when the worker says so: the
  ``done`` frame of the job before it names it as ``next``, or (when it arrived after
  that frame was sent) a ``begin`` frame. Only then is ``on_start`` called (the
  execution becomes ``RUNNING``) and its time limit starts (:mod:`.limits`).
* **Withdrawn.** A job that has not begun can be withdrawn with a ``cancel`` frame;
  the worker answers ``skipped`` if it had not begun it. A job the user cancels is
  withdrawn so; should it begin all the same (the ``cancel`` frame crossed the
  ``done`` frame that began it), its worker is killed, as for any running job that
  is cancelled. :meth:`Lane.steal` withdraws the jobs stuck behind a long one, for an
  idle worker to take (see :meth:`~.pool.WorkerPool.run`).
* **Lost.** When the worker's stream ends (a crash, a limit, a kill), the job that had
  begun gets ``None`` (the pool says why, :func:`.jobs.lost`) and every other job of
  the lane gets :data:`REQUEUE`: it never began, so it goes back to the pool's queue.

Example:
    >>> lane = Lane(worker, memory_limit=2**30, on_free=print, on_end=print)  # doctest: +SKIP
    >>> done = loop.create_future()  # doctest: +SKIP
    >>> entry = lane.send(job, on_start=None, on_log=print, future=done)  # doctest: +SKIP
    >>> outcome = await done  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from .._frames import FrameError, encode_head, read_frame_async
from .jobs import Job, Outcome, outcome_of, run_frame
from .limits import start_watchdog

if TYPE_CHECKING:
    from .process import WorkerProcess

__all__ = ["PIPELINE_DEPTH", "PIPELINE_WINDOW", "REQUEUE", "Entry", "Lane", "Requeue"]

_log = logging.getLogger("daisi_async.server.workers")

PIPELINE_DEPTH = 16
"""The most jobs sent to one worker and not yet done (one running, the rest queued)."""

PIPELINE_WINDOW = 0.005
"""A job is sent behind a running one only if that began less than this many seconds
ago; jobs stuck behind one that runs longer are taken back when a worker is idle."""


class Requeue:
    """The job never began on its worker (which was lost, or gave it back): queue it again."""

    __slots__ = ()


REQUEUE: Final = Requeue()
"""What a withdrawn or lost job that never began ends with."""


class Entry:
    """One job in a lane."""

    __slots__ = ("begun", "cancelled", "eid", "future", "job", "on_log", "on_start", "stolen")

    def __init__(
        self,
        job: Job,
        future: asyncio.Future[Outcome | Requeue | None],
        on_start: Callable[[], None] | None,
        on_log: Callable[[dict[str, Any]], None],
    ) -> None:
        self.job = job
        """The job as sent (a sandboxed worker's paths)."""
        self.eid = job.eid
        self.future = future
        """Its :class:`Outcome`, :data:`REQUEUE`, or None: its worker was lost while it ran."""
        self.on_start = on_start
        self.on_log = on_log
        self.begun = False
        self.cancelled = False  # withdrawn because its caller stopped waiting
        self.stolen = False  # withdrawn for another worker to take

    def end(self, result: Outcome | Requeue | None) -> None:
        """Give the job's end to whoever waits for it (no one, if its caller stopped)."""
        if not self.future.done():
            self.future.set_result(result)


class Lane:
    """The jobs of one worker (see the module docstring) and the task reading its frames.

    ``on_free(worker)`` is called when a job leaves the lane (room for another);
    ``on_end(worker)`` once the worker's stream has ended.
    """

    __slots__ = (
        "_memory_limit",
        "_on_end",
        "_on_free",
        "_outbox",
        "_task",
        "began_at",
        "entries",
        "worker",
    )

    def __init__(
        self,
        worker: WorkerProcess,
        *,
        memory_limit: int | None,
        on_free: Callable[[WorkerProcess], None],
        on_end: Callable[[WorkerProcess], None],
    ) -> None:
        self.worker = worker
        self.entries: collections.deque[Entry] = collections.deque()
        self.began_at = 0.0
        """When the running job began (loop time)."""
        self._outbox: list[bytes] | None = None
        """Frames for a busy worker, written together at the end of this loop turn."""
        self._memory_limit = memory_limit
        self._on_free, self._on_end = on_free, on_end
        self._task = asyncio.get_running_loop().create_task(self._read())

    # -- the pool's side ---------------------------------------------------------------
    def open(self, now: float) -> bool:
        """Whether one more job may be sent now (see :data:`PIPELINE_WINDOW`)."""
        return len(self.entries) < PIPELINE_DEPTH and self._young(now)

    def _young(self, now: float) -> bool:
        """Whether no job runs, or the running one began under :data:`PIPELINE_WINDOW` ago."""
        entries = self.entries
        return not entries or not entries[0].begun or now - self.began_at < PIPELINE_WINDOW

    def send(
        self,
        job: Job,
        *,
        on_start: Callable[[], None] | None,
        on_log: Callable[[dict[str, Any]], None],
        future: asyncio.Future[Outcome | Requeue | None],
    ) -> Entry:
        """Send ``job``; its end comes in ``future`` (the entry's)."""
        entry = Entry(job, future, on_start, on_log)
        queued = bool(self.entries)
        self.entries.append(entry)
        head, bodies = run_frame(job, queued=queued)
        self._write([head, *bodies], now=not queued)
        if not queued:
            self._begin(entry)
        return entry

    def withdraw(self, entry: Entry) -> None:
        """The caller of ``entry`` stopped waiting: kill the worker if the job has begun
        (as for any cancelled running job), else take it back."""
        if entry not in self.entries:  # (its future is cancelled with its caller: not a sign)
            return
        if entry.begun:
            self.worker.kill("cancel")
            return
        entry.cancelled = True
        self._cancel(entry)

    def steal(self, now: float, *, every: bool = False) -> None:
        """Take back the jobs waiting behind one that has run :data:`PIPELINE_WINDOW`
        seconds or more (with ``every``: whatever runs); they end with :data:`REQUEUE`."""
        if not every and self._young(now):
            return
        for entry in self.entries:
            if not (entry.begun or entry.cancelled or entry.stolen):
                entry.stolen = True
                self._cancel(entry)

    def _cancel(self, entry: Entry) -> None:
        self._write([encode_head({"op": "cancel", "eid": entry.eid})], now=False)

    def _write(self, frames: list[bytes], *, now: bool) -> None:
        """Send ``frames`` to the worker: at once if it waits for them (``now``), else
        with the lane's other frames of this loop turn, in one system call (a lane
        refilled after a read of several ``done`` frames gets its jobs in one write,
        and the worker wakes once for them)."""
        outbox = self._outbox
        if outbox is not None:  # frames already waiting go first
            outbox.extend(frames)
        elif now:
            self._send_now(frames)
        else:
            self._outbox = frames
            asyncio.get_running_loop().call_soon(self._send_outbox)

    def _send_outbox(self) -> None:
        frames, self._outbox = self._outbox, None
        if frames:
            self._send_now(frames)

    def _send_now(self, frames: list[bytes]) -> None:
        # (a worker that is gone fails no write here: its reader sees the end of the stream)
        with contextlib.suppress(ConnectionError, OSError):
            self.worker.writer.writelines(frames)  # one system call, not one per part

    # -- the worker's side -------------------------------------------------------------
    async def _read(self) -> None:
        reader = self.worker.reader
        try:
            while True:
                try:
                    frame = await read_frame_async(reader)
                except FrameError:
                    self.worker.kill("protocol")
                    return
                except (ConnectionError, OSError):
                    return
                if frame is None:
                    return
                header, body = frame
                op = header.get("op")
                if op == "log":
                    entries = self.entries
                    if entries and entries[0].begun and header.get("eid") == entries[0].eid:
                        entries[0].on_log(header)
                elif op == "done":
                    if not self._done(header, body):
                        return
                elif op == "begin":
                    if not self._begin_named(header.get("eid")):
                        return
                elif op == "skipped":
                    self._skipped(header.get("eid"))
        except Exception:  # a bug of ours: the worker can't be trusted to be in step
            _log.exception("the lane of worker %d failed; the worker is stopped", self.worker.pid)
            self.worker.kill("protocol")
        finally:
            self._ended()

    def _done(self, header: dict[str, Any], body: bytes) -> bool:
        entries = self.entries
        if not entries or not entries[0].begun or entries[0].eid != header.get("eid"):
            self.worker.kill("protocol")
            return False
        entry = entries.popleft()
        self.worker.stop_watchdog()
        entry.end(outcome_of(header, body))
        following = header.get("next")
        if following is not None and not self._begin_named(following):
            return False
        self._on_free(self.worker)
        return True

    def _begin_named(self, eid: object) -> bool:
        """The worker began the job ``eid``: it must be the first of the lane."""
        entries = self.entries
        if not entries or entries[0].begun or entries[0].eid != eid:
            self.worker.kill("protocol")
            return False
        self._begin(entries[0])
        return True

    def _begin(self, entry: Entry) -> None:
        entry.begun = True
        entry.stolen = False
        if entry.cancelled:  # its cancel frame came too late: stop it as a running job
            self.worker.kill("cancel")
            return
        self.began_at = asyncio.get_running_loop().time()
        start_watchdog(self.worker, timeout=entry.job.timeout, memory_limit=self._memory_limit)
        if entry.on_start is not None:
            try:
                entry.on_start()
            except Exception:
                _log.exception("the start callback of execution %s failed", entry.eid)

    def _skipped(self, eid: object) -> None:
        for entry in self.entries:
            if entry.eid == eid and not entry.begun:
                self.entries.remove(entry)
                entry.end(REQUEUE)
                self._on_free(self.worker)
                return

    def _ended(self) -> None:
        """The worker's stream ended: the job that began was lost (the pool says why:
        :func:`.jobs.lost`), the others go back to the queue."""
        worker = self.worker
        entries, self.entries = self.entries, collections.deque()
        if not (entries and entries[0].begun) and not worker.gone:
            worker.kill()  # no job to report on: make sure it is gone
        worker.gone = True  # (not killed here when a job was running: lost() reads its exit)
        for entry in entries:
            entry.end(None if entry.begun else REQUEUE)
        self._on_end(worker)

    async def close(self) -> None:
        """Wait for the reading task to end (after the worker's stream has)."""
        with contextlib.suppress(BaseException):
            await self._task
