"""Integrity: endpoints that stress the store (odd text, slow ends, big output)."""

from __future__ import annotations

import os
import time


def odd_name(delay: float = 0.0) -> str:
    """Print a file name that is not valid UTF-8, as ``os.fsdecode`` gives it back."""
    name = os.fsdecode(b"caf\xe9.txt")
    print(name, flush=True)
    time.sleep(delay)
    return "printed"


def odd_error() -> None:
    """Fail with a message holding a lone surrogate."""
    raise ValueError(os.fsdecode(b"bad \xff byte"))


def slow(seconds: float = 1.0, lines: int = 0) -> float:
    """Sleep ``seconds``, printing ``lines`` lines first; returns the seconds."""
    for i in range(lines):
        print(f"line {i}", flush=True)
    time.sleep(seconds)
    return seconds


def big(size: int) -> bytes:
    """``size`` bytes (large results go to a blob file)."""
    return b"x" * size
