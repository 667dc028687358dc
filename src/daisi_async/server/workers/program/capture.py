"""Capturing a Daisi's output: line writers for ``sys.stdout``/``sys.stderr`` and logging.

Example:
    >>> out = LineWriter(channel, "stdout", sys.stdout)  # doctest: +SKIP
    >>> out.begin("e1"); print("hi", file=out); out.end()  # one log frame for e1  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
from typing import Any, TextIO

from daisi_async.server import _frames

from .channel import Channel

__all__ = [
    "IMPORTING",
    "MAX_LINE",
    "BinaryAdapter",
    "CurrentStderrHandler",
    "LineWriter",
    "configure_logging",
]

MAX_LINE = 1 << 20
"""A partial line longer than this (in characters) is sent as a line of its own."""

IMPORTING = ""
"""The execution id of the lines printed while the Daisi's module is imported."""

_LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


class BinaryAdapter(io.RawIOBase):
    """``sys.stdout.buffer`` of a line writer: bytes are decoded as UTF-8."""

    def __init__(self, text: LineWriter) -> None:
        super().__init__()
        self._text = text

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._text.write(data.decode("utf-8", "replace"))
        return len(data)


class LineWriter(io.TextIOBase):
    """A text stream that sends each complete line as a ``log`` frame, immediately.

    While the Daisi imports, the frames carry the execution id :data:`IMPORTING`
    (the lines go to the Daisi's start log). Between executions (no current
    execution id) it writes to ``passthrough``.
    """

    def __init__(self, channel: Channel, name: str, passthrough: TextIO | None) -> None:
        super().__init__()
        self._channel = channel
        self._name = name
        self._passthrough = passthrough
        self._lock = threading.RLock()
        self._eid: str | None = None
        self._partial: list[str] = []
        self._partial_len = 0
        self._buffer = BinaryAdapter(self)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return "strict"

    @property
    def buffer(self) -> BinaryAdapter:
        """A binary view: bytes written here are decoded and captured too."""
        return self._buffer

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        """The worker's original descriptor (writes to it are not captured)."""
        if self._passthrough is None:
            raise io.UnsupportedOperation("fileno")
        return self._passthrough.fileno()

    def begin(self, eid: str) -> None:
        """Start capturing for execution ``eid`` (:data:`IMPORTING`: the import)."""
        with self._lock:
            self._eid = eid
            self._partial = []
            self._partial_len = 0

    def end(self) -> None:
        """Send a pending partial line and stop capturing."""
        with self._lock:
            if self._eid is not None and self._partial:
                self._send_lines(self._eid, ["".join(self._partial)])
            self._eid = None
            self._partial = []
            self._partial_len = 0

    def _send_lines(self, eid: str, lines: list[str]) -> None:
        data = b"".join(
            _frames.encode_head({"op": "log", "eid": eid, "stream": self._name, "line": line})
            for line in lines
        )
        self._channel.send_raw(data)

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        with self._lock:
            eid = self._eid
            if eid is None:
                if self._passthrough is not None:
                    with contextlib.suppress(Exception):  # nowhere to report it
                        self._passthrough.write(s)
                return len(s)
            if "\n" not in s:
                self._partial.append(s)
                self._partial_len += len(s)
                if self._partial_len > MAX_LINE:
                    self._send_lines(eid, ["".join(self._partial)])
                    self._partial = []
                    self._partial_len = 0
                return len(s)
            parts = s.split("\n")
            if self._partial:
                parts[0] = "".join(self._partial) + parts[0]
            last = parts.pop()
            self._partial = [last] if last else []
            self._partial_len = len(last)
            self._send_lines(eid, parts)
        return len(s)

    def flush(self) -> None:
        """Lines are sent as soon as they are complete; only the passthrough is flushed."""
        if self._eid is None and self._passthrough is not None:
            with contextlib.suppress(Exception):  # nowhere to report it
                self._passthrough.flush()


class CurrentStderrHandler(logging.Handler):
    """A logging handler that writes to whatever ``sys.stderr`` is at emit time."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            sys.stderr.write(msg + "\n")
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def configure_logging() -> None:
    """Send every ``logging`` record (INFO and up) to the current ``sys.stderr``."""
    root = logging.getLogger()
    handler = CurrentStderrHandler()
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
