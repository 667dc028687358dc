"""Executions in warm worker processes on this machine (the default backend).

Each Daisi gets a :class:`~daisi_async.server.workers.WorkerPool`; results come back to
the store at once.

Example:
    >>> pool = LocalBackend().make_pool(spec, settings)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..workers.environment import worker_environment
from ..workers.pool import WorkerPool
from .base import Backend, PoolSettings

if TYPE_CHECKING:
    from ..registry import DaisiSpec

__all__ = ["LocalBackend"]


class LocalBackend(Backend):
    """Worker pools on this machine."""

    def make_pool(self, spec: DaisiSpec, settings: PoolSettings) -> WorkerPool:
        """A :class:`WorkerPool` for ``spec``."""
        sandbox = settings.sandbox
        env = worker_environment(
            sandbox.environment() if sandbox is not None else None,
            passed=settings.env_passed,
            extra=settings.env_extra or None,
        )
        pool = WorkerPool(
            name=settings.name,
            directory=settings.directory,
            entry=settings.entry,
            env=env,
            memory_limit=settings.memory_limit,
            on_log=settings.on_log,
            on_output=settings.on_output,
            interpreter=settings.interpreter,
            min_workers=settings.min_workers,
            max_workers=settings.max_workers,
            idle_timeout=settings.idle_timeout,
            import_timeout=settings.import_timeout,
            sandbox=sandbox,
        )
        if settings.pinned:
            pool.pin(settings.max_workers)
        return pool
