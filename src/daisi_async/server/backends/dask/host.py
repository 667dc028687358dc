"""The Daisi host on one Dask worker (:class:`DaisiHost`): the runtime's streams, the
executions they send, and the results this worker keeps.

It lives in the Dask worker process, on the worker's event loop (installed by
:class:`~.plugins.DaisiHostPlugin`), and registers two handlers on the worker (as
Dask's own extensions do): the stream the runtime opens (:data:`~.protocol.STREAM_HANDLER`)
and the fetch of a kept result (:data:`~.protocol.FETCH_HANDLER`). Daisi code never runs
in Dask's threads: each execution goes to a warm worker process of its Daisi
(:mod:`.installs`), which enforces the time and memory limits, captures its output line
by line and is killed when the execution is cancelled.

A result larger than the job's inline limit stays here, in a file under the worker's
local directory, until the runtime drops it: the runtime fetches it when a client asks,
and another Dask worker fetches it when a chained execution runs there. Kept results
outlive the runtime's connection (a restarted runtime finds them again in ``hello``),
not the Dask worker.

Example:
    >>> host = DaisiHost(worker)  # in a worker plugin's setup  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distributed.batched import BatchedSend
from distributed.comm.core import CommClosedError
from distributed.core import Status
from distributed.protocol.serialize import to_serialize

import daisi_async

from ...workers.jobs import DaisiImportError, Job, error
from ...workers.pool import MAX_WORKERS, PoolRetired
from .installs import Installs
from .protocol import (
    FETCH_HANDLER,
    HOST_EXTENSION,
    HOST_TOPIC,
    PROTOCOL,
    SERIALIZE_ABOVE,
    STREAM_HANDLER,
)

if TYPE_CHECKING:
    from distributed import Worker
    from distributed.comm.core import Comm

__all__ = ["INSTALL_WAIT", "DaisiHost", "host_of", "wire_bytes"]

_log = logging.getLogger("daisi_async.cluster")

INSTALL_WAIT = 120.0
"""Seconds a run waits for its Daisi's code to arrive on this worker."""

STATE_INTERVAL = 0.25
"""Seconds between two looks at the pools' states (sent when they change)."""

START_DELAY = 0.005
"""Seconds after its start that a run's ``start`` is sent, unless its ``done`` (which
then says ``started``) or a log line goes first: a short run costs one message, not two.
A Dask worker lost within that time leaves its run looking not started: it is placed
again without counting an attempt."""


def wire_bytes(data: bytes | None) -> Any:
    """``data`` as a message value: large bytes travel as frames of their own."""
    if data is not None and len(data) > SERIALIZE_ABOVE:
        return to_serialize(data)
    return data


def slots_of(worker: Worker) -> int:
    """Executions the worker runs at once: its ``daisi`` resource, else its threads."""
    declared = worker.state.total_resources.get("daisi")
    n = int(declared) if declared else worker.state.nthreads
    return max(1, min(n, MAX_WORKERS))


class _Run:
    """One execution on this host: the stream it came from, its task, its start."""

    __slots__ = ("eid", "happened", "link", "sent", "task", "timer")

    def __init__(self, link: _Link, eid: str) -> None:
        self.link = link
        self.eid = eid
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.happened = False
        self.sent = False

    def started(self) -> None:
        """A worker process took the run: say so soon (:data:`START_DELAY`)."""
        self.happened = True
        self.timer = asyncio.get_running_loop().call_later(START_DELAY, self.tell)

    def tell(self) -> None:
        """Send ``start`` now, if it happened and was not sent."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.happened and not self.sent:
            self.sent = True
            self.link.send({"op": "start", "eid": self.eid})

    def fold(self, reply: dict[str, Any]) -> None:
        """The run ended before its ``start`` was sent: ``reply`` says it started."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.happened and not self.sent:
            self.sent = True
            reply["started"] = True


class _Link:
    """One runtime's stream, as the host sees it."""

    def __init__(self, comm: Comm, runtime: str) -> None:
        self.comm = comm
        self.runtime = runtime
        self.out = BatchedSend(interval=0)
        self.out.start(comm)

    def send(self, msg: dict[str, Any]) -> None:
        with contextlib.suppress(CommClosedError):
            self.out.send(msg)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.out.close(), 2.0)
        self.comm.abort()


class DaisiHost:
    """The Daisies of one Dask worker and the runtime streams (module docstring)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.address: str = worker.address
        self.root = Path(worker.local_directory) / "daisi"
        self.results = self.root / "results"
        self.results.mkdir(parents=True, exist_ok=True)
        self.slots = slots_of(worker)
        self.installs = Installs(
            self.root, slots=self.slots, on_log=self._log_line, on_output=self._output
        )
        self.held: dict[str, tuple[Path, int]] = {}
        """Results kept here: execution id -> (file, size)."""
        self.links: set[_Link] = set()
        self._runs: dict[str, _Run] = {}
        self._closing = False
        self._states: dict[str, dict[str, Any]] = {}
        self._reporter = asyncio.get_running_loop().create_task(self._report_states())
        worker.handlers[STREAM_HANDLER] = self.stream
        worker.handlers[FETCH_HANDLER] = self.fetch
        worker.extensions[HOST_EXTENSION] = self
        worker.log_event(HOST_TOPIC, {"address": self.address})

    # -- the runtime's streams -----------------------------------------------------------
    async def stream(self, comm: Comm, protocol: int = 0, runtime: str = "") -> Status:
        """The handler of a runtime's stream: hello, then messages until it closes."""
        comm.allow_offload = False  # (see protocol.SERIALIZE_ABOVE)
        link = _Link(comm, runtime)
        link.send(
            {
                "op": "hello",
                "protocol": PROTOCOL,
                "version": daisi_async.__version__,
                "address": self.address,
                "slots": self.slots,
                "held": {eid: size for eid, (_p, size) in self.held.items()},
            }
        )
        if protocol != PROTOCOL or self._closing:
            await link.close()
            return Status.dont_reply
        self.links.add(link)
        if self._states:
            link.send({"op": "pools", "states": self._states})
        try:
            while True:
                batch = await comm.read()
                for msg in batch if isinstance(batch, (list, tuple)) else [batch]:
                    self._handle(link, msg)
        except (CommClosedError, OSError):
            pass
        finally:
            self.links.discard(link)
            for eid, run in list(self._runs.items()):
                if run.link is link and run.task is not None:  # nobody waits for it any more
                    run.task.cancel()
                    del self._runs[eid]
            await link.close()
        return Status.dont_reply

    def _handle(self, link: _Link, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "run":
            run = _Run(link, str(msg["eid"]))
            run.task = asyncio.get_running_loop().create_task(self._run(run, msg))
            self._runs[run.eid] = run
            run.task.add_done_callback(lambda t: self._ran(run, t))
        elif op == "cancel":
            found = self._runs.pop(str(msg["eid"]), None)
            if found is not None and found.task is not None:
                found.task.cancel()
        elif op == "size":
            self.installs.size(str(msg["install"]), str(msg["version"]), int(msg["number"]))
        elif op == "drop":
            for eid in msg.get("eids", ()):
                self._drop(str(eid))

    def _ran(self, run: _Run, task: asyncio.Task[None]) -> None:
        if self._runs.get(run.eid) is run:
            del self._runs[run.eid]
        if run.timer is not None:
            run.timer.cancel()
        if not task.cancelled() and task.exception() is not None:
            _log.error("execution %s", run.eid, exc_info=task.exception())

    def _drop(self, eid: str) -> None:
        kept = self.held.pop(eid, None)
        if kept is not None:
            kept[0].unlink(missing_ok=True)

    # -- one execution -------------------------------------------------------------------
    async def _run(self, run: _Run, msg: dict[str, Any]) -> None:
        eid = run.eid
        reply: dict[str, Any] = {"op": "done", "eid": eid}
        answer = True
        try:
            install, version = str(msg["install"]), str(msg["version"])
            item = self.installs.current.get(install)
            if item is None or item.version != version:  # its code is still on its way
                item = await self.installs.wait(install, version, INSTALL_WAIT)
                if item is None:
                    raise PoolRetired("a newer version of the Daisi replaced this one")
            args: dict[str, dict[str, Any]] = msg["args"]
            if any("held" in arg for arg in args.values()):
                args, failure = await self._arguments(args)
                if failure is not None:
                    reply.update(ok=False, error=failure)
                    return
            job = Job(
                eid=eid,
                endpoint=str(msg["endpoint"]),
                args=args,
                timeout=float(msg["timeout"]),
                result_path=str(self.results / f"r-{eid}"),
                inline_limit=int(msg["inline_limit"]),
            )
            outcome = await item.pool.run(job, on_start=run.started)
        except asyncio.CancelledError:  # by the runtime, or its stream closed
            answer = False
            raise
        except PoolRetired:
            reply["retired"] = True
        except DaisiImportError as exc:
            reply["import_error"] = exc.error
        except asyncio.TimeoutError:
            reply.update(
                ok=False,
                error=error(
                    "daisi.ClusterUnavailable",
                    f"the Daisi's code did not reach the Dask worker {self.address} within"
                    f" {INSTALL_WAIT:g} s",
                ),
            )
        else:
            if outcome.ok and outcome.result_file is not None:
                self.held[eid] = (Path(outcome.result_file), outcome.result_size)
                reply.update(ok=True, held=outcome.result_size)
            else:
                reply.update(
                    ok=outcome.ok,
                    error=outcome.error,
                    result=wire_bytes(outcome.result),
                    json=outcome.result_json,
                )
        finally:
            if answer and not self._closing:  # closing: the runtime hears it from "closing"
                run.fold(reply)
                run.link.send(reply)

    async def _arguments(
        self, raw: Mapping[str, Mapping[str, Any]]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, str] | None]:
        """The job's arguments; results kept by a Dask worker are read here or fetched
        from it (worker to worker). Returns ``(args, None)`` or ``({}, error)``."""
        args: dict[str, dict[str, Any]] = {}
        for name, arg in raw.items():
            if "held" not in arg:
                args[name] = dict(arg)
                continue
            eid, at = str(arg["held"]), str(arg.get("at") or "")
            kept = self.held.get(eid)
            if kept is not None:
                args[name] = {"file": str(kept[0])}
                continue
            try:
                reply = await self.worker.rpc(at).daisi_fetch(eid=eid)
            except Exception as exc:
                why = f"{type(exc).__name__}: {exc}"
            else:
                if reply.get("status") == "OK":
                    args[name] = {"bytes": bytes(reply["data"])}
                    continue
                why = "that worker no longer keeps it"
            return {}, error(
                "daisi.ArgumentError",
                f"argument {name!r}: the result of execution {eid} could not be fetched"
                f" from the Dask worker {at}: {why}",
            )
        return args, None

    async def fetch(self, eid: str) -> dict[str, Any]:
        """The handler that hands out a kept result (to the runtime or another worker)."""
        kept = self.held.get(eid)
        if kept is None:
            return {"status": "missing"}
        try:
            data = await asyncio.to_thread(kept[0].read_bytes)
        except OSError:
            return {"status": "missing"}
        return {"status": "OK", "data": to_serialize(data)}

    # -- what the pools say ---------------------------------------------------------------
    def _log_line(self, eid: str, stream: str, line: str) -> None:
        run = self._runs.get(eid)
        if run is not None:
            run.tell()  # RUNNING before its first line
            run.link.send({"op": "log", "eid": eid, "stream": stream, "line": line})

    def _output(self, install: str, stream: str, line: str) -> None:
        for link in list(self.links):
            link.send({"op": "output", "install": install, "stream": stream, "line": line})

    async def _report_states(self) -> None:
        while True:
            await asyncio.sleep(STATE_INTERVAL)
            states = self.installs.states()
            if states != self._states:
                self._states = states
                for link in list(self.links):
                    link.send({"op": "pools", "states": states})

    # -- code and shutdown ----------------------------------------------------------------
    def uninstall(self, install: str, version: str) -> None:
        """A Daisi's code plugin was removed or replaced."""
        if not self._closing:
            self.installs.uninstall(install, version)

    async def close(self, reason: str = "the Dask worker is shutting down") -> None:
        """The Dask worker closes: tell the runtimes (their runs here are lost), stop
        every worker process."""
        if self._closing:
            return
        self._closing = True
        self._reporter.cancel()
        for link in list(self.links):
            link.send({"op": "closing", "reason": reason})
        for run in list(self._runs.values()):
            if run.task is not None:
                run.task.cancel()
        await asyncio.gather(*(link.close() for link in list(self.links)))
        await self.installs.close()
        self.worker.handlers.pop(STREAM_HANDLER, None)
        self.worker.handlers.pop(FETCH_HANDLER, None)
        self.worker.extensions.pop(HOST_EXTENSION, None)


def host_of(worker: Worker) -> DaisiHost:
    """The worker's host, made on first use (call on the worker's event loop)."""
    host = worker.extensions.get(HOST_EXTENSION)
    if not isinstance(host, DaisiHost):
        host = DaisiHost(worker)
    return host
