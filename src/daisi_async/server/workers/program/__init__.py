"""The worker process program: one warm process that runs one Daisi's executions.

Started by :class:`daisi_async.server.workers.WorkerPool` as (see
:func:`daisi_async.server.workers.process.worker_command`)::

    python -m daisi_async.server.workers.program --fd N --dir DAISI_DIR --entry app.py

``N`` is an inherited socket; the worker speaks :mod:`daisi_async.server._frames`
over it. The worker

1. moves to the Daisi's folder and puts it first on ``sys.path`` (sibling
   modules import);
2. imports the entry module **as** ``__main__`` with its top-level
   ``if __name__ == "__main__":`` blocks removed (their ``else`` branches are
   kept), so that dill pickles classes and functions defined in the Daisi by
   value and a result travels with its class to a client that lacks the code
   (:mod:`.loading`);
3. reports ``{"op": "ready", "pid"}`` or ``{"op": "import_error", "error"}``, after
   the ``log`` frames of what the import printed;
4. runs the jobs of ``{"op": "run"}`` frames one at a time, in the order they came,
   until ``{"op": "exit"}`` or the end of the stream (:mod:`.main`, :mod:`.calling`,
   :mod:`.results`), answering each with a ``{"op": "done", "eid", "next"}`` frame.

The server may send jobs while one runs (``"queued": true``); they wait in the
worker's inbox (:mod:`.inbox`). ``next`` names the job that begins right after a
``done`` frame (taken from the inbox before the frame is sent), or is null; a queued
job that no ``next`` named is announced by ``{"op": "begin", "eid"}`` as it begins. So
the server always knows which job runs. ``{"op": "cancel", "eid"}`` takes back a job
that has not begun, answered by ``{"op": "skipped", "eid"}``; for a job that has begun
it is ignored. The inbox is read between jobs, and during a job once it has run 5 ms
(by a watcher thread), so that jobs stuck behind a long one can be taken back.

Client bytes (dill arguments) are opened only here, never in the server.

The program imports only the standard library, dill, the framing module and
:mod:`daisi_async.server.workers.proctree` (and :mod:`daisi_async._values`): a worker
starts fast and never loads the server's or the client's dependencies, nor asyncio
until a coroutine endpoint runs (an idle warm worker of a trivial Daisi is about 19 MB
resident; ``tests/server/test_worker_imports.py`` keeps it so).

Processes (see :mod:`daisi_async.server.workers.proctree`): the worker is a child
subreaper, so every process the Daisi starts stays below it, even one that
double-forks into a session of its own. Processes alive when the worker reports
``ready`` (started at import time) may live as long as the worker. Any other process
below the worker when an execution ends is killed and reaped before the ``done``
frame is sent. The worker kills everything below it before it exits, and when the
server dies (a thread watches the server through a pidfd, or polls the parent pid
where there is none).

Output (:mod:`.capture`): while the Daisi imports and during an execution,
``sys.stdout`` and ``sys.stderr`` are line writers that send every complete line to
the server at once as a ``log`` frame, from any thread (import-time lines go to the
Daisi's start log); ``logging`` goes to the current ``sys.stderr``. Outside them
(from threads that outlive their execution) output goes to the worker's original
streams: file descriptors 1 and 2, which the pool connects to ``/dev/null`` and to
the server's own stderr respectively. Output written straight to the file
descriptors (C extensions, subprocesses) is not captured.
"""
