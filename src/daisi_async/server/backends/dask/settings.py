"""The cluster backend's waits and this runtime's name on the cluster.

Example:
    >>> cluster_wait()  # doctest: +SKIP
    120.0
"""

from __future__ import annotations

import hashlib
import socket

import dask.config

__all__ = [
    "CLUSTER_WAIT",
    "CONNECT_TIMEOUT",
    "FETCH_WAIT",
    "SYNC_INTERVAL",
    "cluster_wait",
    "runtime_key",
]

CONNECT_TIMEOUT = 5.0
"""Seconds one attempt to reach the scheduler may take."""
CLUSTER_WAIT = 120.0
"""Seconds an execution waits for a cluster with no worker (or no scheduler) before it
fails with ``daisi.ClusterUnavailable``, unless Dask's configuration sets
``daisi.cluster-wait`` (e.g. ``DASK_DAISI__CLUSTER_WAIT=30``)."""
FETCH_WAIT = 10.0
"""Seconds a request for a kept result waits for the cluster to be connected."""
SYNC_INTERVAL = 2.0
"""Seconds between two comparisons of the linked workers with the scheduler's list."""


def cluster_wait() -> float:
    """:data:`CLUSTER_WAIT`, or Dask's ``daisi.cluster-wait`` setting."""
    return float(dask.config.get("daisi.cluster-wait", CLUSTER_WAIT))


def runtime_key(store_dir: object) -> str:
    """This runtime's name on the cluster (its host and store): a restarted runtime
    finds its Daisies and kept results again; another runtime's are not its own."""
    text = f"{socket.gethostname()}:{store_dir}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]
