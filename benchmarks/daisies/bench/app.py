"""Bench: endpoints that isolate one cost each, for ``benchmarks/run.py``."""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def nbytes(value: Any) -> int:
    """The size of an array argument (a small result: isolates the upload)."""
    return int(getattr(value, "nbytes", 0))


def zeros(size: int) -> np.ndarray:
    """A float64 array of ``size`` bytes made here (a small argument: isolates the download)."""
    return np.zeros(size // 8, dtype=np.float64)


def stamp(before: float = 0.0, after: float = 0.2) -> float:
    """Sleep ``before`` seconds, print the wall clock, sleep ``after`` seconds."""
    time.sleep(before)
    now = time.time()
    print(f"stamp {now!r}", flush=True)
    time.sleep(after)
    return now


def talk(lines: int = 5, seconds: float = 0.3) -> float:
    """Print ``lines`` lines over ``seconds`` seconds; return the seconds this call ran."""
    t0 = time.perf_counter()
    for i in range(lines):
        print(f"line {i + 1} of {lines}", flush=True)
        time.sleep(seconds / max(lines, 1))
    return time.perf_counter() - t0


def ticks(lines: int = 5, before: float = 0.0) -> int:
    """Sleep ``before`` seconds, then print ``lines`` numbered lines at once."""
    time.sleep(before)
    for i in range(lines):
        print(f"tick {i + 1}", flush=True)
    return lines
