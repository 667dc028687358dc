"""What the runtime and the Daisi host on each Dask worker say to each other.

The runtime opens one Dask comm to each Dask worker (``distributed.comm.connect``, with
the cluster's security settings) and sends ``{"op": STREAM_HANDLER, "reply": False,
"protocol": PROTOCOL, "runtime": <key>}``; the host's handler owns the comm from then
on. Both sides write lists of messages with ``distributed.batched.BatchedSend`` and no
batching interval: a message goes out at once, and what piles up during one write goes
out together in the next (thousands of executions per write under load).

Host → runtime:

* ``hello``: ``protocol``, ``version`` (of daisi-async), ``slots``, ``held`` (``{execution
  id: size}`` of the results it keeps);
* ``start`` ``eid``: a worker process took the execution (it is RUNNING); sent a few
  milliseconds after the fact (``host.START_DELAY``), or folded into ``done`` as
  ``started`` when the run ends first;
* ``log`` ``eid stream line``: one line the execution printed;
* ``done`` ``eid`` and ``ok``, ``error``, ``result`` (dill bytes up to the job's inline
  limit), ``json``, ``held`` (the size of a larger result the host keeps), or
  ``import_error`` (the Daisi could not be imported), or ``retired`` (the code version
  of the run was replaced);
* ``output`` ``install stream line``: a line a worker printed while importing a Daisi;
* ``pools`` ``states``: ``{install: {"version", "number", "state", "broken"}}`` when it
  changes;
* ``closing`` ``reason``: the Dask worker is shutting down (its runs are lost).

Runtime → host: ``run`` (``eid install version endpoint args timeout inline_limit``),
``cancel`` ``eid``, ``size`` ``install version number`` (``workers.set``: warm worker
processes of the Daisi on this host, 0 for none), ``drop`` ``eids`` (results the runtime
stored or does not need). Arguments are ``{"json": v}``, ``{"bytes": b}`` or ``{"held":
eid, "at": address}`` (a result kept by the host at ``address``).

The RPC handler ``FETCH_HANDLER`` (``eid``) answers ``{"status": "OK", "data": bytes}``
or ``{"status": "missing"}``: the runtime fetches a kept result with it, and hosts fetch
each other's results for chained executions (worker to worker).
"""

from __future__ import annotations

__all__ = [
    "FETCH_HANDLER",
    "HOST_EXTENSION",
    "HOST_TOPIC",
    "IN_FLIGHT_PER_SLOT",
    "PROTOCOL",
    "SERIALIZE_ABOVE",
    "STREAM_HANDLER",
]

PROTOCOL = 1
"""Bumped when a message changes: a runtime and a host that differ don't talk."""

STREAM_HANDLER = "daisi_stream"
FETCH_HANDLER = "daisi_fetch"
HOST_EXTENSION = "daisi"
"""The key of the :class:`~.host.DaisiHost` in ``worker.extensions``."""
HOST_TOPIC = "daisi-host"
"""The event topic on which a host says it is ready (``{"address": ...}``)."""

IN_FLIGHT_PER_SLOT = 4
"""Executions sent to a host per slot: one running, the others waiting there for the next
free worker process, so that a worker process never waits for a round trip to the
runtime (measured on 2 cores, 2 Dask workers: ~450 calls/s with 2, ~600/s with 4, no
better with more). The price: a long execution can hold up to 3 others queued behind it
on its Dask worker (they start when it ends, or elsewhere if that worker is lost)."""

SERIALIZE_ABOVE = 64 * 1024
"""Bytes values larger than this travel as frames of their own (no msgpack copy). The
streams' comms don't offload serialization to a thread (``allow_offload = False``): it is
cheap with large bytes as frames, and deciding to offload costs a ``sizeof`` of every
message written (measured: ~0.4 ms per write, more than the rest of an execution)."""
