"""The ``--cluster`` value: a Dask scheduler's address, or ``local:N`` (no Dask import).

Example:
    >>> parse_cluster("local:2")
    ClusterAddress(scheduler=None, local_workers=2)
    >>> parse_cluster("10.0.0.5:8786").scheduler
    'tcp://10.0.0.5:8786'
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

__all__ = ["MAX_LOCAL_WORKERS", "ClusterAddress", "parse_cluster"]

MAX_LOCAL_WORKERS = 256
"""The most Dask workers ``local:N`` starts."""

_SCHEMES = ("tcp", "tls", "ucx", "ws", "wss")
_ADDRESS = re.compile(
    r"^(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s/:\[\]]+):(?P<port>\d{1,5})$"
)


@dataclass(frozen=True)
class ClusterAddress:
    """Where executions run: an existing scheduler, or a local cluster of N workers."""

    scheduler: str | None
    """The scheduler's address (``tcp://host:8786``); None for a local cluster."""
    local_workers: int | None = None
    """``local:N``: the Dask worker processes to start on this machine."""

    def __str__(self) -> str:
        return self.scheduler or f"local:{self.local_workers}"


def parse_cluster(text: str) -> ClusterAddress:
    """``tcp://host:port`` (``tls://``, ``ucx://``, ``ws://``, ``wss://``; a bare
    ``host:port`` is TCP), ``local`` (one Dask worker per core) or ``local:N``.

    Raises:
        ValueError: anything else, with what is expected.
    """
    value = text.strip()
    if value == "local" or value.startswith("local:"):
        count = value.partition(":")[2]
        if not count:
            return ClusterAddress(None, os.cpu_count() or 1)
        if not count.isdigit() or not 1 <= int(count) <= MAX_LOCAL_WORKERS:
            raise ValueError(
                f"local:N needs a number of Dask workers from 1 to {MAX_LOCAL_WORKERS},"
                f" not {count!r}"
            )
        return ClusterAddress(None, int(count))
    match = _ADDRESS.match(value)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ValueError(
            f"not a Dask scheduler address: {text!r} (expected tcp://HOST:PORT, e.g."
            " tcp://10.0.0.5:8786, or local:N)"
        )
    scheme = match["scheme"] or "tcp"
    if scheme not in _SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r} in {text!r} (one of {', '.join(_SCHEMES)})")
    return ClusterAddress(f"{scheme}://{match['host']}:{int(match['port'])}")
