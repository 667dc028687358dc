"""What the API shows of a worker pool: its size, status and state (a part of
:class:`~.pool.WorkerPool`)."""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

from .backoff import Backoff
from .jobs import DaisiImportError
from .state import DaisiState

if TYPE_CHECKING:
    from .process import WorkerProcess

__all__ = ["PoolView"]


class PoolView:
    """The read-only view of a pool's workers (a part of :class:`~.pool.WorkerPool`)."""

    _max: int
    _pinned: bool
    _starting: int
    _retiring: int
    _workers: set[WorkerProcess]
    _idle: collections.deque[WorkerProcess]
    _backoff: Backoff

    @property
    def number(self) -> int:
        """The pinned count when pinned, else the workers running or starting now."""
        return self._max if self._pinned else len(self._workers) + self._starting

    @property
    def status(self) -> str:
        """``"increasing"`` while workers start, ``"decreasing"`` while surplus workers
        retire, else ``"ready_to_update"`` (busy workers are not a resize)."""
        if self._starting > 0:
            return "increasing"
        if self._retiring > 0 or len(self._workers) > self._max:
            return "decreasing"
        return "ready_to_update"

    @property
    def state(self) -> DaisiState:
        """``ready`` (a worker is in service), ``starting``, ``broken`` (the last start
        failed) or ``idle`` (no worker)."""
        if self._workers:
            return DaisiState.READY
        if self._starting:
            return DaisiState.STARTING
        if self._backoff.failure is not None:
            return DaisiState.BROKEN
        return DaisiState.IDLE

    @property
    def broken(self) -> DaisiImportError | None:
        """The failed start that leaves the pool without workers (state ``broken``), if any."""
        return self._backoff.failure if self.state is DaisiState.BROKEN else None

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers in service."""
        return sorted(w.pid for w in self._workers)

    @property
    def idle_count(self) -> int:
        """The number of workers waiting for a job."""
        return len(self._idle)
