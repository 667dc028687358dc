"""When a pool may try again to start a worker after a failed start (:class:`Backoff`).

The first retry may begin ``FIRST_BACKOFF`` seconds after the failure; each failure
doubles the wait, up to ``MAX_BACKOFF``; a success resets it. Starts that run side by
side and fail together count as one attempt.

Example:
    >>> b = Backoff()
    >>> b.failed(DaisiImportError({"type": "E", "message": "", "traceback": ""}), now=100.0)
    >>> b.waiting(100.5), b.waiting(101.0), b.delay
    (True, False, 2.0)
"""

from __future__ import annotations

from .jobs import DaisiImportError, error

__all__ = ["FIRST_BACKOFF", "MAX_BACKOFF", "Backoff", "as_import_error"]

FIRST_BACKOFF = 1.0
"""Seconds after a failed start before a call may start a worker again."""

MAX_BACKOFF = 60.0
"""The longest wait between two attempts to start a worker (the backoff doubles up to it)."""


def as_import_error(exc: BaseException) -> DaisiImportError:
    """A failure to start a worker, as a pool reports it."""
    if isinstance(exc, DaisiImportError):
        return exc
    return DaisiImportError(error("daisi.WorkerStartError", f"could not start a worker: {exc!r}"))


class Backoff:
    """The last failed start, and when the next attempt may begin."""

    def __init__(self) -> None:
        self.failure: DaisiImportError | None = None
        """The last failed start's error (None after a success)."""
        self.retry_at = 0.0
        """When (event-loop time) the next attempt may begin."""
        self.delay = FIRST_BACKOFF
        """The wait that the next failure sets."""

    def failed(self, failure: DaisiImportError, *, now: float) -> None:
        """A start failed at ``now``."""
        if self.failure is None or now >= self.retry_at:
            self.retry_at = now + self.delay
            self.delay = min(self.delay * 2, MAX_BACKOFF)
        self.failure = failure

    def succeeded(self) -> None:
        """A worker started: no wait any more."""
        self.failure = None
        self.retry_at = 0.0
        self.delay = FIRST_BACKOFF

    def waiting(self, now: float) -> bool:
        """Whether a failed start forbids a new attempt at ``now``."""
        return self.failure is not None and now < self.retry_at
