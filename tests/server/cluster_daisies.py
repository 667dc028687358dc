"""The Daisies the cluster tests serve: examples and Echo (linked), Where and Where Else
(written; the same code, limits only on Where).

Where's endpoints print and return where they run: the worker process (``pid``) and its
parent, the Dask worker process (``dask``).
"""

from __future__ import annotations

from pathlib import Path

from tests.server.conftest import EXAMPLES
from tests.support.daisi_folders import make_daisi

TESTS = Path(__file__).resolve().parents[1]

UNSANDBOXED = ["--isolation", "none"]
"""Where's pids are the real ones only outside the sandbox (its PID namespace hides the
Dask worker): the runtimes that look at them run without. test_cluster's
``test_sandbox_on_the_dask_workers`` runs with it."""

WHERE_APP = '''
"""Where: cluster test helpers."""

import os
import signal
import time


def where(seconds: float = 0.0) -> dict:
    """Print and return this worker's pid and its Dask worker's, after ``seconds``."""
    print(f"pid {os.getpid()} dask {os.getppid()}", flush=True)
    time.sleep(seconds)
    return {"pid": os.getpid(), "dask": os.getppid()}


def stamp(after: float = 0.5) -> float:
    """Print the time, then sleep ``after`` seconds."""
    print(repr(time.time()), flush=True)
    time.sleep(after)
    return after


def big(size: int) -> bytes:
    """``size`` bytes, made on a Dask worker (which says which)."""
    print(f"dask {os.getppid()}", flush=True)
    return bytes(size)


def length(data: bytes) -> int:
    """The length of ``data``, and the Dask worker that measured it."""
    print(f"dask {os.getppid()}", flush=True)
    return len(data)


def hog(mb: int = 600) -> int:
    """Hold ``mb`` MiB of touched memory for a while."""
    block = bytearray(mb * 2**20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(5)
    return len(block)


def peek() -> dict:
    """What this worker process sees: the processes, the folders beside its Daisi's."""
    pids = [name for name in os.listdir("/proc") if name.isdigit()]
    return {"processes": len(pids), "beside": sorted(os.listdir(".."))}


def kill_my_dask_worker() -> None:
    """SIGKILL the Dask worker process this runs under."""
    print(f"dask {os.getppid()}", flush=True)
    time.sleep(0.5)  # the line reaches the runtime before its Dask worker dies
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(30)
'''

WHERE_TOML = """
name = "Where"
description = "Cluster test helpers."
timeout = 4
memory = "300MB"
"""


def cluster_daisies(root: Path) -> Path:
    """A folder of Daisies for the cluster tests, under ``root``."""
    for name in ("add-two-numbers", "live-logging", "always-fails", "daisi-serialize"):
        (root / name).symlink_to(EXAMPLES / name, target_is_directory=True)
    (root / "echo").symlink_to(TESTS / "daisies" / "echo", target_is_directory=True)
    make_daisi(root, "where", {"app.py": WHERE_APP, "daisi.toml": WHERE_TOML})
    make_daisi(root, "where-else", {"app.py": WHERE_APP, "daisi.toml": 'name = "Where Else"\n'})
    return root
