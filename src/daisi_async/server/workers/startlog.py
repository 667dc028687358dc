"""A Daisi's start log: what its workers print while they import it (:class:`StartLog`).

Lines are kept in memory, the last ``MAX_LINES`` of them (each cut to ``MAX_CHARS``),
and each is echoed on the server's console with the Daisi's name in front.

Example:
    >>> log = StartLog("Adder", echo=None)
    >>> log.add("stdout", "loading the model")
    >>> [line["line"] for line in log.lines()]
    ['loading the model']
"""

from __future__ import annotations

import collections
import contextlib
import sys
import time
from typing import Any, TextIO

__all__ = ["MAX_CHARS", "MAX_LINES", "StartLog"]

MAX_LINES = 1000
"""How many lines a start log keeps (the latest)."""

MAX_CHARS = 10_000
"""A longer line is kept cut to this many characters (a note says how many more)."""


class StartLog:
    """The latest lines a Daisi's workers printed while importing it."""

    def __init__(self, name: str, *, echo: TextIO | None = sys.stderr) -> None:
        self.name = name
        self._echo = echo
        self._lines: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_LINES)
        self._seq = 0

    def add(self, stream: str, line: str) -> None:
        """Keep one line (``stream`` is ``"stdout"`` or ``"stderr"``) and echo it."""
        if len(line) > MAX_CHARS:
            line = f"{line[:MAX_CHARS]}... ({len(line) - MAX_CHARS} more characters)"
        self._seq += 1
        self._lines.append({"seq": self._seq, "stream": stream, "line": line, "time": time.time()})
        if self._echo is not None:
            with contextlib.suppress(Exception):  # a closed console must not stop a start
                self._echo.write(f"[{self.name}] {line}\n")
                self._echo.flush()

    def lines(self, *, after: int = 0) -> list[dict[str, Any]]:
        """The kept lines (``{"seq", "stream", "line", "time"}``) with ``seq > after``."""
        return [line for line in self._lines if line["seq"] > after]
