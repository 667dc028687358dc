"""How the client verbs write: JSON and tables on stdout, notes on stderr, and a spinner
on stderr while they wait (only when stderr is a terminal and rich is installed).

Example:
    >>> print(table(["NAME", "STATE"], [["Echo", "ready"], ["Add Two Numbers", "idle"]]))
    NAME             STATE
    Echo             ready
    Add Two Numbers  idle
    >>> result_text(11), result_text("hi"), result_text({1, 2})
    ('11', '"hi"', '{1, 2}')
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import click

__all__ = ["Feedback", "echo_json", "json_text", "result_text", "table", "took", "when"]


def json_text(value: Any) -> str | None:
    """``value`` as indented JSON text, or None if it is not JSON-able (NaN is not)."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None


def result_text(value: Any) -> str:
    """A result as ``daisi call`` prints it: JSON when JSON-able, else its ``repr``."""
    text = json_text(value)
    return repr(value) if text is None else text


def echo_json(value: Any) -> None:
    """Print JSON on stdout (anything that is not JSON-able as its ``repr``)."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=repr))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, str(row[-1])]).rstrip())
    return "\n".join(lines)


def when(timestamp: float | None) -> str:
    """A server time (seconds since the epoch) in local time, or ``-``."""
    if timestamp is None:
        return "-"
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def took(start: float | None, end: float | None) -> str:
    """The seconds between two server times, or ``-``."""
    if start is None or end is None:
        return "-"
    return f"{end - start:.2f} s"


class Feedback:
    """What a verb shows while it waits: lines on stdout (:meth:`out`) or stderr
    (:meth:`err`), and a spinner with the time elapsed on stderr when it is a terminal
    (with rich installed; otherwise nothing but the lines)."""

    def __init__(self, text: str, *, spinner: bool | None = None) -> None:
        self.text = text
        if spinner is None:
            spinner = sys.stderr.isatty() and importlib.util.find_spec("rich") is not None
        self.spinner = spinner
        self._live: Any = None

    def __enter__(self) -> Feedback:
        if self.spinner:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(
                _Waiting(self.text),
                console=Console(stderr=True),
                transient=True,
                refresh_per_second=10,
                redirect_stdout=sys.stdout.isatty(),  # else stdout is a pipe: leave it
                redirect_stderr=False,
            )
            self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()

    def out(self, line: str) -> None:
        """A line on stdout (above the spinner)."""
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def err(self, line: str) -> None:
        """A line on stderr (above the spinner)."""
        if self._live is not None:
            from rich.text import Text

            self._live.console.print(Text(line), soft_wrap=True)
        else:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()


class _Waiting:
    """A spinner, the text, and the seconds since it started."""

    def __init__(self, text: str) -> None:
        from rich.spinner import Spinner

        self.text = text
        self.spinner = Spinner("dots")
        self.started = time.monotonic()

    def __rich__(self) -> Any:
        from rich.text import Text

        self.spinner.update(text=Text(f"{self.text} ({time.monotonic() - self.started:.0f} s)"))
        return self.spinner
