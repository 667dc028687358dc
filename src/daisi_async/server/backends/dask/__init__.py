"""Executions on a Dask cluster (``daisi serve --cluster``), keeping what the local
runtime does per call: warm imports, live logs, cancel, time and memory limits, and
remote results that move from worker to worker.

How it is built
===============

* **Code travels with Dask.** Each Daisi's folder is zipped into a worker plugin
  (:mod:`.plugins`) that Dask installs on every worker, present and future; no shared
  file system is assumed. The workers need daisi-async installed (the ``cluster``
  extra), the same version as the runtime.
* **Warm processes on each Dask worker.** A Daisi host on each worker
  (:mod:`.host`, on the worker's event loop) keeps a
  :class:`~daisi_async.server.workers.WorkerPool` per Daisi (:mod:`.installs`): the
  same worker processes, limits, log capture and containment as on one machine, never
  Dask's threads. A Daisi with a ``requirements.txt`` gets its environment built with
  uv on each worker (``--index-url``, ``--find-links`` and ``--offline`` apply there).
  The Daisi's ``[env]`` settings and secrets travel with its code (to its processes
  only); when the runtime sandboxes its workers, each Dask worker sandboxes them too
  (bubblewrap there; a worker without it refuses the Daisi, saying why).
* **One stream per worker for the hot path.** The runtime talks to each host over one
  Dask comm (:mod:`.links`, :mod:`.protocol`), not through the scheduler: ``run`` goes
  out, ``start``, each ``log`` line and ``done`` come back as they happen, many
  executions per write under load. Measured on a 2-core machine, a trivial call costs
  ~0.9 ms over such a stream against ~11 ms for a scheduler round trip
  (``client.submit(f).result()``), and a stream carries ~20,000 calls/s against ~300
  tasks/s for ``client.map`` + ``gather``. Placement is the runtime's
  (:mod:`.placement`); the scheduler says which workers exist.
* **Capacity.** A Dask worker runs as many executions at once as it has threads
  (``dask worker --nthreads``) or, if it declares one, as its ``daisi`` resource
  (``--resources daisi=4``), across Daisies; a Daisi keeps up to that many warm
  processes on it, and ``--workers`` / ``min_workers`` warm processes on each worker.
  ``workers.set(n)`` (or ``workers = n`` in daisi.toml) gives the Daisi ``n`` processes
  on the cluster, spread evenly over the workers and kept warm, and at most ``n`` of
  its executions run at once; ``max_workers`` (default: ``--max-workers``, 64 on a
  cluster) caps its executions running at once, cluster-wide.
* **Results.** A result up to 64 KiB comes back with its execution and is stored at
  once. A larger one stays on the worker that made it (a file in its local directory):
  a chained execution is preferably placed on that worker, else its worker fetches
  the bytes from that one; they never pass through the runtime or the client. A client
  asking for the result has it fetched into the store then, once; the worker's copy is
  dropped. Durability: such a result survives a restart of the runtime (the worker
  still has it, and says so when the runtime connects again) but not the loss of that
  worker; asking for it then answers 410 ``result_gone``, and a chained execution
  fails naming the lost worker.
* **Faults.** A worker lost while running an execution (killed, crashed, shut down,
  unreachable): the execution runs again on another worker, with a line in its log
  saying so — executions run *at least once* on a cluster — up to
  ``distributed.scheduler.allowed-failures`` times (3), then fails with
  ``daisi.WorkerLost``. The scheduler lost: executions running end FAILED with
  ``daisi.ClusterUnavailable``; the others wait QUEUED, up to 120 s without a worker;
  the runtime connects again when the scheduler is back. Cancelling an execution kills
  its worker process on the Dask worker at once.

Example::

    daisi serve examples/daisies --cluster tcp://10.0.0.5:8786
    daisi serve examples/daisies --cluster local:2
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .address import ClusterAddress, parse_cluster

if TYPE_CHECKING:
    from .backend import DaskBackend

__all__ = ["ClusterAddress", "DaskBackend", "parse_cluster"]


def __getattr__(name: str) -> Any:
    """:class:`DaskBackend`, imported on first use (the ``--cluster`` option is checked
    without Dask)."""
    if name == "DaskBackend":
        from .backend import DaskBackend

        return DaskBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
