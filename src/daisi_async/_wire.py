"""The Daisi wire protocol in one place: statuses, routes and payload shapes.

See ``docs/protocol.md`` for the full description. Both the client and the local
runtime import from here, so a route or a status name is spelled once.
"""

from __future__ import annotations

import enum

from ._public import public

API_PREFIX = "/pebble-api"
"""Every route, legacy or v1, lives under this prefix."""

LOOKUP_PREFIX = "lookup:"
"""Legacy argument strings with this prefix refer to a stored object or an execution."""

CAPABILITIES_ROUTE = "/capabilities"
V1 = "/v1"

MAX_WAIT_SECONDS = 60.0
"""The longest a single waiting request is held open by the server."""


@public
class ExecutionStatus(str, enum.Enum):
    """The status of an execution; transitions only move forward.

    ``NOT_STARTED`` is a client-side status (a lazy handle not yet submitted).

    Example:
        >>> ExecutionStatus("FINISHED").is_terminal
        True
    """

    NOT_STARTED = "NOT_STARTED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        """True for ``FINISHED``, ``FAILED`` and ``CANCELLED``."""
        return self in _TERMINAL

    @property
    def legacy(self) -> str:
        """The value the legacy (pydaisi) routes report for this status."""
        return _LEGACY.get(self, self.value)

    def __str__(self) -> str:
        return self.value


_TERMINAL = frozenset({ExecutionStatus.FINISHED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})
_LEGACY = {
    ExecutionStatus.QUEUED: "RUNNING",
    ExecutionStatus.CANCELLED: "FAILED",
}

# Error "type" values for failures that are not an exception raised by Daisi code.
WORKER_CRASHED = "daisi.WorkerCrashed"
TIME_LIMIT_EXCEEDED = "daisi.TimeLimitExceeded"
MEMORY_LIMIT_EXCEEDED = "daisi.MemoryLimitExceeded"
CANCELLED = "daisi.Cancelled"
UPSTREAM_FAILED = "daisi.UpstreamFailed"
ARGUMENT_ERROR = "daisi.ArgumentError"
RESULT_ERROR = "daisi.ResultError"
INTERRUPTED = "daisi.Interrupted"
DAISI_BROKEN = "daisi.DaisiBroken"
WORKER_LOST = "daisi.WorkerLost"
"""The Dask workers running an execution were lost more often than the cluster allows."""
CLUSTER_UNAVAILABLE = "daisi.ClusterUnavailable"
"""The Dask cluster could not run the execution (no worker, or the scheduler was lost)."""
