"""One Daisi's workers on a Dask cluster (:class:`ClusterPool`), as the engine sees them.

The pool runs an execution on a Dask worker picked by :mod:`.placement`, over that
worker's :class:`~.links.HostLink`: the run's arguments go with it (results kept by a
Dask worker go as references), its log lines come back as they are printed, and so does
its outcome (a large result stays on the worker: :class:`~..base.HeldOutcome`).

**At least once.** When the Dask worker running an execution is lost (killed, crashed,
shut down, or unreachable), the execution runs again on another worker, and its log
says so (a line from the runtime); after ``distributed.scheduler.allowed-failures``
such losses (Dask's own setting, 3 by default) it fails with ``daisi.WorkerLost``. An
execution that had not started where it was sent is simply placed again. When the
scheduler is lost, the executions that had started fail with
``daisi.ClusterUnavailable``; the others wait for the cluster to come back.

Example:
    >>> outcome = await pool.run(job, on_start=mark_running)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask.config

from ...._wire import CLUSTER_UNAVAILABLE, UPSTREAM_FAILED, WORKER_LOST
from ...workers.jobs import DaisiImportError, Job, Outcome, clean_error, error
from ...workers.pool import MAX_WORKERS, PoolRetired
from ...workers.state import DaisiState
from ..base import HeldOutcome, PoolSettings
from .host import wire_bytes
from .links import HostLink, HostLost
from .placement import ClusterUnavailable

if TYPE_CHECKING:
    from ...registry import DaisiSpec
    from .backend import DaskBackend

__all__ = ["ClusterPool", "allowed_failures"]


def allowed_failures() -> int:
    """How many lost Dask workers an execution survives (Dask's
    ``distributed.scheduler.allowed-failures``, 3 unless configured)."""
    return max(0, int(dask.config.get("distributed.scheduler.allowed-failures", 3)))


def _fail(kind: str, message: str) -> Outcome:
    return Outcome(ok=False, error=error(kind, message))


class ClusterPool:
    """A Daisi's workers on the cluster (see the module docstring)."""

    def __init__(self, backend: DaskBackend, spec: DaisiSpec, settings: PoolSettings) -> None:
        self.backend = backend
        self.spec = spec
        self.settings = settings
        self.key = f"{backend.key}-{spec.id}"
        """The install key: this runtime's Daisi on the workers."""
        self.version = ""
        """The code version on the workers (set once it is packed)."""
        self.in_flight = 0
        self.registered = -1
        """The connection epoch in which the code was installed on the cluster."""
        self.failure: DaisiImportError | None = None
        """Why the code could not be installed (the Daisi can't run)."""
        self._pinned = settings.max_workers if settings.pinned else 0
        self._limit = settings.max_workers
        self._retired = False
        self._closed = False
        self._runs = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # -- what placement and the API read ---------------------------------------------------
    @property
    def limit(self) -> int:
        """The most of its executions running at once, cluster-wide."""
        return self._pinned or self._limit

    @property
    def shares(self) -> dict[str, int] | None:
        """Pinned: its worker processes per Dask worker, spread evenly; else None."""
        if not self._pinned:
            return None
        addresses = sorted(self.backend.placement.links)
        count = len(addresses)
        return {
            a: self._pinned // count + (1 if i < self._pinned % count else 0)
            for i, a in enumerate(addresses)
        }

    def _reports(self) -> list[dict[str, Any]]:
        out = []
        for link in list(self.backend.placement.links.values()):
            report = link.states.get(self.key)
            if report is not None and report.get("version") == self.version:
                out.append(report)
        return out

    @property
    def number(self) -> int:
        """The pinned count, else the worker processes running or starting on the
        cluster (as the Dask workers last reported)."""
        return self._pinned or sum(int(r.get("number", 0)) for r in self._reports())

    @property
    def status(self) -> str:
        """``increasing`` / ``decreasing`` while a pinned count is not reached yet."""
        if not self._pinned or not self.backend.placement.links:
            return "ready_to_update"
        running = sum(int(r.get("number", 0)) for r in self._reports())
        if running < self._pinned:
            return "increasing"
        return "decreasing" if running > self._pinned else "ready_to_update"

    @property
    def state(self) -> DaisiState:
        """``ready`` if some Dask worker has one of its processes ready, ``building``,
        ``starting``, ``broken`` (everywhere it was tried) or ``idle``."""
        if self.failure is not None:
            return DaisiState.BROKEN
        states = {str(r.get("state")) for r in self._reports()}
        for state in (DaisiState.READY, DaisiState.BUILDING, DaisiState.STARTING):
            if state.value in states:
                return state
        return DaisiState.BROKEN if DaisiState.BROKEN.value in states else DaisiState.IDLE

    @property
    def broken(self) -> DaisiImportError | None:
        """Why the Daisi can't run on the cluster, when it can't."""
        if self.failure is not None:
            return self.failure
        if self.state is DaisiState.BROKEN:
            for report in self._reports():
                if report.get("broken"):
                    return DaisiImportError(clean_error(report["broken"]))
        return None

    @property
    def pids(self) -> list[int]:
        """None on this machine: the processes run on the Dask workers."""
        return []

    @property
    def idle_count(self) -> int:
        """None on this machine."""
        return 0

    # -- changing it -----------------------------------------------------------------------
    def start(self) -> None:
        """Install the code on the cluster (in the background; again after a reconnect)."""
        self.backend.install(self)

    def pin(self, n: int) -> None:
        """``workers.set(n)``: ``n`` worker processes on the cluster, spread evenly over the
        Dask workers and kept warm; at most ``n`` executions run at once."""
        if not 1 <= n <= MAX_WORKERS:
            raise ValueError(f"the number of workers must be between 1 and {MAX_WORKERS}")
        self.check_usable()
        self._pinned = n
        self.backend.share(self)

    async def retire(self) -> None:
        """Waiting executions get :class:`PoolRetired` (the engine sends them to the new
        pool); running ones finish."""
        if self._retired:
            return
        self._retired = True
        self.backend.placement.fail_pool(
            self, PoolRetired(f"the workers of {self.settings.name!r} were replaced")
        )
        self.backend.retired(self)
        await self._idle.wait()

    async def close(self) -> None:
        """Take no more executions (the runtime is stopping; its runs were cancelled)."""
        self._closed = True
        self.backend.placement.fail_pool(
            self, RuntimeError(f"the worker pool of {self.settings.name!r} is closed")
        )

    def check_usable(self) -> None:
        if self._closed:
            raise RuntimeError(f"the worker pool of {self.settings.name!r} is closed")
        if self._retired:
            raise PoolRetired(f"the workers of {self.settings.name!r} were replaced")

    # -- one execution ---------------------------------------------------------------------
    async def run(self, job: Job, *, on_start: Callable[[], None] | None = None) -> Outcome:
        """Run ``job`` on a Dask worker (see the module docstring).

        Raises:
            DaisiImportError: the Daisi could not be imported (or installed) there.
            PoolRetired: the pool was retired before a worker took the job.
        """
        self.check_usable()
        self._idle.clear()
        self._runs += 1
        try:
            return await self._run(job, on_start)
        finally:
            self._runs -= 1
            if not self._runs:
                self._idle.set()

    async def _run(self, job: Job, on_start: Callable[[], None] | None) -> Outcome:
        args = await _wire_args(job.args)
        lost: list[HostLost] = []
        budget = allowed_failures()

        def on_log(stream: str, line: str) -> None:
            self.settings.on_log(job.eid, stream, line)

        while True:
            try:
                if not self.backend.is_ready(self):
                    await self.backend.ready(self)
                located = self.backend.kept_results.locate_args(args)
                if isinstance(located, str):
                    return _fail(UPSTREAM_FAILED, located)
                sent, prefer = located
                link = await self.backend.placement.acquire(self, prefer, resumed=bool(lost))
            except ClusterUnavailable as exc:
                return _fail(CLUSTER_UNAVAILABLE, str(exc))
            msg = {
                "op": "run",
                "eid": job.eid,
                "install": self.key,
                "version": self.version,
                "endpoint": job.endpoint,
                "args": sent,
                "timeout": job.timeout,
                "inline_limit": job.inline_limit,
            }
            try:
                reply = await link.run(msg, on_start=on_start, on_log=on_log)
            except HostLost as exc:
                if not exc.started:  # it never ran there: place it again
                    continue
                lost.append(exc)
                if not self.backend.connected:
                    return _fail(CLUSTER_UNAVAILABLE, self.backend.scheduler_lost(exc))
                if len(lost) > budget:
                    return _fail(WORKER_LOST, _worker_lost(lost, budget))
                on_log(
                    "stderr",
                    f"daisi runtime: {exc}; running this execution again on another Dask"
                    f" worker (attempt {len(lost) + 1} of {budget + 1}: on a cluster, an"
                    " execution runs at least once)",
                )
                continue
            finally:
                self.backend.placement.release(link, self)
            return self._outcome(job, reply, link)

    def _outcome(self, job: Job, reply: dict[str, Any], link: HostLink) -> Outcome:
        if reply.get("retired"):
            raise PoolRetired(f"the workers of {self.settings.name!r} were replaced")
        if reply.get("import_error") is not None:
            raise DaisiImportError(clean_error(reply["import_error"]))
        if not reply.get("ok"):
            return Outcome(ok=False, error=clean_error(reply.get("error")))
        if reply.get("held") is not None:
            size = int(reply["held"])
            self.backend.kept(job.eid, link.address, size)
            return HeldOutcome(ok=True, result_size=size, holder=link.address)
        data = bytes(reply.get("result") or b"")
        json_text = reply.get("json")
        return Outcome(
            ok=True,
            result=data,
            result_size=len(data),
            result_json=json_text if isinstance(json_text, str) else None,
        )


def _worker_lost(lost: list[HostLost], budget: int) -> str:
    where = "; ".join(f"{exc.address} ({exc.why})" for exc in lost)
    return (
        f"the Dask worker running this execution was lost {len(lost)} times: {where}; no more"
        f" attempts (distributed.scheduler.allowed-failures = {budget})"
    )


async def _wire_args(args: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The job's arguments as they travel: files read here, large bytes as frames."""
    out: dict[str, dict[str, Any]] = {}
    for name, arg in args.items():
        if "file" in arg:
            data = await asyncio.to_thread(Path(arg["file"]).read_bytes)
            out[name] = {"bytes": wire_bytes(data)}
        elif "bytes" in arg:
            out[name] = {"bytes": wire_bytes(arg["bytes"])}
        else:
            out[name] = arg
    return out
