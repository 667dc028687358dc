"""``progress=`` on ``map``, ``as_completed`` (both faces) and ``Daisi.run_parallel``: a
rich progress bar with the done, failed and running counts and the rate, drawn while the
run goes on and stopped with it; without rich, an ``ImportError`` naming the extra
before anything is sent."""

from __future__ import annotations

import io
import re
import sys

import pytest
from rich.console import Console

from daisi_async import AsyncDaisi, Daisi, DaisiExecutionError
from daisi_async.testing import LocalRuntime

pytestmark = pytest.mark.anyio

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def console() -> Console:
    """A terminal console writing into memory."""
    return Console(file=io.StringIO(), force_terminal=True, width=200, color_system=None)


def last_frame(con: Console) -> str:
    """The bar as last drawn."""
    assert isinstance(con.file, io.StringIO)
    text = ANSI.sub("", con.file.getvalue())
    frames = [f.strip() for f in re.split(r"[\r\n]", text) if f.strip()]
    assert frames, "nothing was drawn"
    return frames[-1]


def counts(frame: str) -> tuple[int, int, int]:
    found = re.search(r"(\d+) done · (\d+) failed · (\d+) running", frame)
    assert found, frame
    done, failed, running = map(int, found.groups())
    return done, failed, running


async def newest(url: str) -> str:
    return str((await AsyncDaisi.list_executions(limit=1, base_url=url))[0]["id"])


async def test_map_draws_the_counts_and_the_rate(echo_runtime: LocalRuntime) -> None:
    con = console()
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        values = await d.map("echo", list(range(20)), max_concurrency=5, progress=con)
    assert values == list(range(20))
    frame = last_frame(con)
    assert frame.startswith("Echo.echo ")
    assert "20/20" in frame and counts(frame) == (20, 0, 0)
    assert re.search(r" \d+\.\d/s ", frame), frame


async def test_running_counts_what_is_in_flight(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        run = d.map("sleep", [0.2] * 7, max_concurrency=3, progress=console())
        tally = run._tally
        assert tally is not None and (tally.total, tally.running) == (7, 0)
        seen = []
        async for _ in run:
            seen.append((tally.done, tally.failed, tally.running))
    # After each result the window is topped up again: 3 in flight while items remain.
    assert seen == [(1, 0, 3), (2, 0, 3), (3, 0, 3), (4, 0, 3), (5, 0, 2), (6, 0, 1), (7, 0, 0)]


async def test_as_completed_counts_failures(echo_runtime: LocalRuntime) -> None:
    con = console()
    items = [(1, 1)] * 8 + [("a", 1)] * 2  # str + int fails remotely
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        results = [
            r async for r in d.as_completed("add", items, return_exceptions=True, progress=con)
        ]
    assert sum(isinstance(r, DaisiExecutionError) for r in results) == 2
    frame = last_frame(con)
    assert "10/10" in frame and counts(frame) == (8, 2, 0)


async def test_a_failure_stops_the_bar(echo_runtime: LocalRuntime) -> None:
    con = console()
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        with pytest.raises(DaisiExecutionError):
            await d.map("add", [("a", 1)], progress=con)
        assert counts(last_frame(con))[1] == 1
        # rich allows one live display per console: the first one has stopped.
        assert await d.map("echo", [1, 2], progress=con) == [1, 2]
    assert counts(last_frame(con)) == (2, 0, 0)


def test_the_blocking_face_map_as_completed_and_run_parallel(echo_runtime: LocalRuntime) -> None:
    with Daisi("Echo", base_url=echo_runtime.url) as d:
        con = console()
        assert d.map("echo", [1, 2, 3], progress=con).value == [1, 2, 3]
        assert counts(last_frame(con)) == (3, 0, 0)
        con = console()
        assert sorted(d.as_completed("echo", [4, 5], progress=con)) == [4, 5]
        assert counts(last_frame(con)) == (2, 0, 0)
        con = console()
        assert Daisi.run_parallel(d.echo(1), d.echo(2), progress=con) == [1, 2]
        frame = last_frame(con)
        assert frame.startswith("run_parallel ") and counts(frame) == (2, 0, 0)
        con = console()
        with pytest.raises(DaisiExecutionError):
            Daisi.run_parallel(d.add("a", 1), d.echo(2), progress=con)
        assert counts(last_frame(con))[1] == 1


def test_without_a_terminal_the_last_counts_are_printed_once(
    echo_runtime: LocalRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    with Daisi("Echo", base_url=echo_runtime.url) as d:
        assert d.map("echo", [1, 2], progress=True).value == [1, 2]
    captured = capsys.readouterr()
    assert captured.out == ""  # the bar goes to stderr
    assert "2/2" in captured.err and "2 done · 0 failed · 0 running" in captured.err
    assert "\x1b[" not in captured.err


async def test_a_bad_progress_value_is_refused_before_anything_is_sent(
    echo_runtime: LocalRuntime,
) -> None:
    before = await newest(echo_runtime.url)
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        for bad in ("yes", 1, None, io.StringIO()):
            with pytest.raises(TypeError, match="progress must be True, False or a rich"):
                d.map("echo", [1], progress=bad)  # type: ignore[arg-type]
    with (
        Daisi("Echo", base_url=echo_runtime.url) as sd,
        pytest.raises(TypeError, match="progress must be"),
    ):
        Daisi.run_parallel(sd.echo(1), progress="yes")  # type: ignore[arg-type]
    assert await newest(echo_runtime.url) == before


async def test_without_rich_progress_names_the_extra(
    echo_runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await newest(echo_runtime.url)
    monkeypatch.setitem(sys.modules, "rich", None)  # as if it were not installed
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        with pytest.raises(ImportError, match=r"pip install 'daisi-async\[progress\]'") as info:
            d.map("echo", [1], progress=True)
        assert info.value.name == "rich"
        with pytest.raises(ImportError, match="progress"):
            d.as_completed("echo", [1], progress=True)
        assert await newest(echo_runtime.url) == before  # nothing was sent
        assert await d.map("echo", [1, 2]) == [1, 2]  # no bar: no rich needed
