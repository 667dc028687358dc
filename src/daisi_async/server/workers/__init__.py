"""Warm worker processes for the Daisies: the pool, the worker program, their limits.

A :class:`WorkerPool` runs worker processes (the program in :mod:`.program`) that have
imported the Daisi's entry module once and run executions one at a time. The pool

* starts workers on demand: ``min_workers`` in the background when it starts, more
  while calls queue, up to ``max_workers``; an idle worker exits after
  ``idle_timeout``, down to ``min_workers``; ``workers.set(n)`` pins the count;
* limits the time an import may take, and tries a failed import again on a later
  call, after a backoff; what an import prints goes to the Daisi's start log;
* hands jobs to workers first come, first served: to an idle worker, or queued on a
  busy one whose job began moments ago (its lane, :mod:`.lane`: the worker then goes
  from job to job without waiting for the server); jobs that never began go back to
  the queue when their worker is lost, or when they are stuck behind a long job while
  another worker is idle;
* relays each log line to ``on_log`` as the worker prints it;
* enforces a time limit and a memory limit per execution by killing the worker
  (:mod:`.limits`); the memory limit counts the resident memory of the worker and of
  every process below it;
* drops workers that die, time out, exceed their memory or are cancelled (the queue
  and ``min_workers`` start new ones);
* never unpickles anything: argument bytes go to the worker as they are, and
  results come back as dill bytes (plus JSON text when the result is plain JSON)
  (:mod:`.jobs`).

Processes a Daisi starts belong to the worker (see :mod:`.proctree`):

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

Workers get an allowlisted environment (:mod:`.environment`), not the server's. Each
worker runs in its own session (process group) and, with a sandbox (:mod:`.sandbox`,
bubblewrap), in PID, mount, user and IPC namespaces of its own, seeing only its
Daisi's folder and its Python, with a private room for its files (:mod:`.room`); its
command line is built in one place, :func:`.process.worker_command`. Everything a
Daisi prints through ``sys.stdout``, ``sys.stderr`` or ``logging`` during an execution
is captured and relayed.

The modules: :mod:`.pool` (the pool: queue, acquire and release, sizing),
:mod:`.backoff` (retrying failed starts), :mod:`.process` (one worker process),
:mod:`.placement` (which worker takes a job), :mod:`.lane` (the jobs sent to one
worker, and the reading of its frames),
:mod:`.jobs` (one execution's frame and outcome), :mod:`.limits` (time and memory
watchdog), :mod:`.proctree` (process trees), :mod:`.environment` (the environment
allowlist), :mod:`.sandbox` and :mod:`.room` (the sandbox and a worker's room in it),
:mod:`.state` (a Daisi's state names), :mod:`.startlog` (a Daisi's start log),
:mod:`.program` (the program a worker runs).

The names below are imported on first use, so that the worker program (which lives
in this package) starts without loading the pool.

Example:
    >>> from daisi_async.server.workers import WorkerPool, Job  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["MAX_WORKERS", "DaisiImportError", "Job", "Outcome", "WorkerPool"]

if TYPE_CHECKING:
    from .jobs import DaisiImportError, Job, Outcome
    from .pool import MAX_WORKERS, WorkerPool


def __getattr__(name: str) -> Any:
    """The public names, imported on first use."""
    if name in ("MAX_WORKERS", "WorkerPool"):
        from . import pool

        return getattr(pool, name)
    if name in ("DaisiImportError", "Job", "Outcome"):
        from . import jobs

        return getattr(jobs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
