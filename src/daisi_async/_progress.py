"""Progress bars for long fan-outs (``progress=True`` on ``map``, ``as_completed`` and
``Daisi.run_parallel``): done, failed and running counts, and the rate.

`rich <https://rich.readthedocs.io>`_ draws the bar, in a terminal and in Jupyter (the
optional ``progress`` extra: ``pip install 'daisi-async[progress]'``). It is imported
only when a bar is asked for, so the client's core stays light; asking without it
raises ``ImportError`` naming the extra, before anything is sent.

Example:
    >>> tally = Tally.of(True, total=3, label="Echo.echo")  # doctest: +SKIP
    >>> tally.start(); tally.submitted(3); tally.ended(ok=True); tally.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = ["EXTRA", "Tally", "check_progress"]

EXTRA = "pip install 'daisi-async[progress]'"
"""How to install what a progress bar needs."""

LABEL_WIDTH = 24
BAR_WIDTH = 20
COUNTS = (
    "[green]{task.fields[done]} done[/] · [red]{task.fields[failed]} failed[/] · "
    "[yellow]{task.fields[running]} running[/]"
)


def _rich() -> Any:
    try:
        return importlib.import_module("rich")
    except ImportError as exc:
        raise ImportError(
            f"progress=True needs rich, the 'progress' extra of daisi-async: {EXTRA}",
            name="rich",
        ) from exc


def check_progress(progress: object) -> None:
    """Check a ``progress=`` argument: ``True``/``False`` or a ``rich.console.Console``.

    Raises ``TypeError`` for anything else, and ``ImportError`` (naming the ``progress``
    extra) when a bar is asked for and rich is not installed.
    """
    if isinstance(progress, bool):
        if progress:
            _rich()
        return
    try:
        console: Any = importlib.import_module("rich.console").Console
    except ImportError:
        console = None
    if console is None or not isinstance(progress, console):
        raise TypeError(
            f"progress must be True, False or a rich.console.Console, not {type(progress).__name__}"
        )


class Tally:
    """The counts of one fan-out, drawn as a rich progress bar while it runs.

    ``running`` counts the executions submitted whose outcome has not arrived yet;
    ``done`` and ``failed`` those that ended (a submission refused counts as failed).
    Every method may be called from any thread; :meth:`start` and :meth:`stop` are
    idempotent.
    """

    def __init__(self, *, total: int, label: str, console: Console | None) -> None:
        self.total = total
        self.label = label
        self.done = 0
        self.failed = 0
        self.running = 0
        self._console = console
        self._lock = threading.Lock()
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._stopped = False

    @classmethod
    def of(cls, progress: object, *, total: int, label: str) -> Tally | None:
        """The tally a ``progress=`` argument asks for (None for ``False``)."""
        check_progress(progress)
        if progress is False:
            return None
        console = None if progress is True else progress
        return cls(total=total, label=label, console=console)  # type: ignore[arg-type]

    # -- events -----------------------------------------------------------------------------
    def submitted(self, n: int = 1) -> None:
        """``n`` executions were submitted."""
        with self._lock:
            self.running += n
            self._draw()

    def ended(self, *, ok: bool, submitted: bool = True) -> None:
        """An execution ended (``submitted=False``: its submission was refused)."""
        with self._lock:
            if submitted:
                self.running -= 1
            if ok:
                self.done += 1
            else:
                self.failed += 1
            self._draw()

    # -- the bar ----------------------------------------------------------------------------
    def start(self) -> None:
        """Show the bar (once)."""
        with self._lock:
            if self._bar is not None or self._stopped:
                return
            self._bar = _new_bar(self._console)
            self._task = self._bar.add_task(
                self.label, total=self.total, done=0, failed=0, running=0
            )
            self._bar.start()
            self._draw()

    def stop(self) -> None:
        """Draw the last counts and stop refreshing the bar."""
        with self._lock:
            self._stopped = True
            bar, self._bar = self._bar, None
            if bar is None:
                return
            self._draw(bar)
            bar.stop()

    def _draw(self, bar: Progress | None = None) -> None:
        bar = bar or self._bar
        if bar is None or self._task is None:
            return
        bar.update(
            self._task,
            completed=self.done + self.failed,
            done=self.done,
            failed=self.failed,
            running=self.running,
        )


def _new_bar(console: Console | None) -> Progress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.table import Column
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Executions ended per second, since the start."""

        def render(self, task: Task) -> Text:
            elapsed = task.elapsed or 0.0
            if elapsed <= 0 or not task.completed:
                return Text("-/s", style="progress.data.speed")
            return Text(f"{task.completed / elapsed:.1f}/s", style="progress.data.speed")

    label = Column(no_wrap=True, overflow="ellipsis", max_width=LABEL_WIDTH)
    return Progress(
        TextColumn("{task.description}", table_column=label),
        BarColumn(bar_width=BAR_WIDTH),
        MofNCompleteColumn(),
        TextColumn(COUNTS),
        RateColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
    )
