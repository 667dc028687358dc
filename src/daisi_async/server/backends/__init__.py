"""Where executions run: warm worker processes on this machine (:mod:`.local`, the
default) or on the workers of a Dask cluster (:mod:`.dask`, ``daisi serve --cluster``).

The engine knows them by the interface of :mod:`.base` only; :func:`make_backend` picks
one from the runtime's configuration.

Example:
    >>> from daisi_async.server.backends import make_backend
    >>> backend = make_backend(config)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Backend, DaisiWorkers, HeldOutcome, PoolSettings, ResultUnavailable
from .local import LocalBackend

if TYPE_CHECKING:
    from ..engine import RuntimeConfig

__all__ = [
    "Backend",
    "DaisiWorkers",
    "HeldOutcome",
    "LocalBackend",
    "PoolSettings",
    "ResultUnavailable",
    "make_backend",
]


def make_backend(config: RuntimeConfig) -> Backend:
    """The backend ``config`` asks for: a Dask cluster with ``cluster`` set, else local.

    Raises:
        ImportError: ``cluster`` is set and Dask is not installed (the message says what
            to install).
    """
    if not config.cluster:
        return LocalBackend()
    try:
        from .dask import DaskBackend
    except ImportError as exc:
        raise ImportError(
            "daisi serve --cluster needs Dask's distributed scheduler:"
            f" pip install 'daisi-async[cluster]' ({exc})"
        ) from exc
    return DaskBackend(config)
