"""Echo: small endpoints the client tests call."""

from __future__ import annotations

import os
import time
from typing import Any


def echo(value: Any) -> Any:
    """Return the argument unchanged."""
    return value


def type_name(value: Any) -> str:
    """The type name of the argument, as the Daisi sees it."""
    return type(value).__name__


def sleep(seconds: float = 1.0, lines: int = 0) -> float:
    """Sleep, printing ``lines`` lines spread over the time; returns the seconds."""
    step = seconds / lines if lines else seconds
    for i in range(lines):
        print(f"line {i}", flush=True)
        time.sleep(step)
    if not lines:
        time.sleep(seconds)
    return seconds


def blob(size: int) -> bytes:
    """``size`` bytes."""
    return bytes(size)


def add(a: Any, b: Any = 1, *rest: Any, scale: float = 1.0, **extra: Any) -> Any:
    """``(a + b + sum(rest)) * scale``; extra keywords are returned with the total."""
    total = (a + b + sum(rest)) * scale
    return {"total": total, "extra": extra} if extra else total


def environment() -> dict[str, str]:
    """What a worker sees: cwd and DAISI_BASE_URL."""
    return {"cwd": os.getcwd(), "base_url": os.environ.get("DAISI_BASE_URL", "")}


def text(codepoints: list[int]) -> str:
    """The string made of these code points (lone surrogates included)."""
    return "".join(map(chr, codepoints))
