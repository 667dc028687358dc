"""Daisi / DaisiExecution: the blocking facade over the shared background loop."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from daisi_async import (
    Daisi,
    DaisiExecution,
    DaisiExecutionError,
    DaisiNotFoundError,
    ExecutionStatus,
    _portal,
)
from daisi_async.testing import LocalRuntime


@pytest.fixture
def echo(echo_runtime: LocalRuntime) -> Daisi:
    with Daisi("Echo", base_url=echo_runtime.url) as d:
        yield d


def test_value_status_logs(daisi_runtime: LocalRuntime) -> None:
    with Daisi("Add Two Numbers", base_url=daisi_runtime.url) as d:
        de = d.compute(firstNumber=5, secondNumber=6)
        assert de.status == "NOT_STARTED" and de.status is ExecutionStatus.NOT_STARTED
        assert de.logs == []
        assert de.value == 11
        assert de.status == "FINISHED"
        assert d.compute(5, 6).value == 11  # positional, as pydaisi maps them


def test_endpoint_attributes(echo: Daisi) -> None:
    assert list(inspect.signature(echo.add).parameters) == ["a", "b", "rest", "scale", "extra"]
    assert "add_" in dir(echo)
    with pytest.raises(TypeError):
        echo.echo()
    with pytest.raises(AttributeError):
        _ = echo.nope


def test_start_logs_and_stream(daisi_runtime: LocalRuntime) -> None:
    with Daisi("Live Logging", base_url=daisi_runtime.url) as d:
        de = d.live_log_test(firstNumber=5, secondNumber=6, delay=2)
        eid = de.start()
        assert eid == de.id
        time.sleep(1.2)
        partial = de.logs
        assert 1 <= len(partial) < 6
        streamed = list(de.stream_logs())
        assert streamed[: len(partial)] == partial
        assert de.value == 11
        assert streamed == de.logs


def test_submit_now_result_timeout_cancel(echo: Daisi) -> None:
    de = echo.sleep_(30)
    assert de.id is not None
    with pytest.raises(TimeoutError):
        de.result(timeout=0.2)
    assert de.cancel() is ExecutionStatus.CANCELLED
    assert de.status is ExecutionStatus.CANCELLED


@pytest.mark.parametrize(
    ("timeout", "error"), [(-1, ValueError), (float("nan"), ValueError), ("1", TypeError)]
)
def test_bad_result_timeout_is_refused_at_once(
    echo: Daisi, timeout: object, error: type[Exception]
) -> None:
    de = echo.sleep(0.2)
    with pytest.raises(error, match="timeout"):
        de.result(timeout=timeout)  # type: ignore[arg-type]
    assert de.id is None  # nothing was submitted
    assert de.result(timeout=30) == 0.2


def test_result_timeout_zero(echo: Daisi) -> None:
    de = echo.sleep_(2)
    with pytest.raises(TimeoutError):
        de.result(timeout=0)
    assert de.result(timeout=None) == 2
    assert de.result(timeout=0) == 2


def test_strings_that_are_not_unicode_round_trip(echo: Daisi) -> None:
    for value in ["a\ud800b", ["\udc80"], {"k\ud83d": "\ude00"}]:
        assert echo.echo(value).value == value
    assert echo.text([0xDFFF]).value == "\udfff"


def test_run_parallel_raises_the_first_failure_not_a_group(echo: Daisi) -> None:
    with pytest.raises(DaisiExecutionError) as info:
        Daisi.run_parallel(echo.add(1, 2), echo.add("x", 1), echo.add(None, 1))
    assert isinstance(info.value, TypeError)
    assert "can only concatenate str" in str(info.value)
    assert Daisi.run_parallel(echo.add(1, 2)) == [3]


def test_failures_raise_with_traceback(daisi_runtime: LocalRuntime) -> None:
    with Daisi("Always Fails", base_url=daisi_runtime.url) as d:
        with pytest.raises(ZeroDivisionError) as info:
            _ = d.divide(1, 0).value
        assert isinstance(info.value, DaisiExecutionError)
        assert "division by zero" in info.value.traceback


def test_remote_results_chain(daisi_runtime: LocalRuntime) -> None:
    import numpy as np

    with Daisi("Daisi Serialize", base_url=daisi_runtime.url) as d:
        stack = d.make_stack(nx=50, ny=50, layers=10).value
        de = d.compute_(map_stack=stack, map=np.random.rand(50, 50))
        result = d.compute_(map_stack=de, map=np.random.rand(50, 50)).value
        assert result.nb_layers == 12


def test_run_parallel_map_from_id_workers(echo: Daisi) -> None:
    assert Daisi.run_parallel(echo.add(1, 2), echo.add(3, 4)) == [3, 7]
    m = echo.map("add", [(i, 1) for i in range(10)], max_concurrency=4)
    assert m.value == list(range(1, 11))
    assert len(m.executions) == 10
    assert list(echo.map(func="add", args_list=[{"a": 1, "b": 1}])) == [2]
    de = echo.echo_("again")
    assert de.id is not None
    assert DaisiExecution.from_id(echo, de.id).value == "again"
    assert echo.workers.number >= 1  # on demand: as many as the calls above needed
    assert echo.workers.status in {"ready_to_update", "increasing", "decreasing"}
    assert "workers" in echo.workers.set(1)
    assert echo.workers.number == 1  # pinned


def test_get_daisies_and_not_found(daisi_runtime: LocalRuntime) -> None:
    names = [d["name"] for d in Daisi.get_daisies(base_url=daisi_runtime.url)]
    assert "Add Two Numbers" in names and names == sorted(names, key=str.lower)
    with pytest.raises(DaisiNotFoundError):
        Daisi("No Such Daisi", base_url=daisi_runtime.url)


def test_breaking_out_of_a_map_cancels_what_it_started(echo: Daisi) -> None:
    """``break`` out of ``for v in d.map(...)``: the executions in flight are CANCELLED at
    once (not left running for 30 s) and the map is closed: nothing more starts."""
    started = time.monotonic()
    m = echo.map("sleep", [0.1, 30, 30, 30, 30, 30], max_concurrency=4)
    for value in m:
        assert value == 0.1
        break
    assert m._run.closed
    statuses = [de.status for de in m.executions]
    assert statuses[0] is ExecutionStatus.FINISHED
    # The window refilled to 4 before the first value was handed out: 4 were in flight.
    assert statuses[1:5] == [ExecutionStatus.CANCELLED] * 4
    assert statuses[5:] == [ExecutionStatus.NOT_STARTED]
    assert m.executions[5].id is None
    assert time.monotonic() - started < 20
    assert echo.echo("after").value == "after"


def test_breaking_out_of_as_completed_and_stream_logs(echo: Daisi) -> None:
    it = echo.as_completed("sleep", [0.1, 30], max_concurrency=2)
    with it:
        assert next(it) == 0.1
    with pytest.raises(StopIteration):
        next(it)
    de = echo.sleep_(30, lines=30)
    for _line in de.stream_logs():
        break  # stops reading; the run goes on (only a map owns its executions)
    assert de.status in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)
    assert de.cancel() is ExecutionStatus.CANCELLED


def test_many_threads_at_once(echo: Daisi) -> None:
    with ThreadPoolExecutor(8) as pool:
        values = list(pool.map(lambda i: echo.add(i, 1).value, range(64)))
    assert values == [i + 1 for i in range(64)]
    assert [t.name for t in threading.enumerate()].count(_portal.THREAD_NAME) == 1


def test_called_from_a_running_event_loop(echo: Daisi) -> None:
    async def notebook_cell() -> object:
        return echo.add(2, 2).value  # sync code inside a running loop (Jupyter, asyncio.run)

    assert asyncio.run(notebook_cell()) == 4


def test_called_from_the_loop_thread_raises(echo: Daisi) -> None:
    async def on_loop_thread() -> None:
        _ = echo.add(1, 1).value

    with pytest.raises(RuntimeError, match="event loop thread"):
        _portal.call(on_loop_thread)
    assert echo.add(1, 1).value == 2  # still usable


def test_close_leaves_no_thread_or_connection(echo_runtime: LocalRuntime) -> None:
    if _portal.loop_thread() is not None:
        pytest.skip("another Daisi is open in this process")
    d = Daisi("Echo", base_url=echo_runtime.url)
    thread = _portal.loop_thread()
    assert thread is not None and thread.daemon and thread.name == _portal.THREAD_NAME
    assert d.add(1, 1).value == 2
    client = _portal.shared_client()
    d.close()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert client.is_closed
    assert _portal.loop_thread() is None
    with Daisi("Echo", base_url=echo_runtime.url) as again:  # starts afresh
        assert again.add(1, 2).value == 3


CTRL_C = textwrap.dedent(
    """
    import sys, time
    from daisi_async import Daisi
    d = Daisi("Echo", base_url=sys.argv[1])
    de = d.sleep(30)
    print("waiting", flush=True)
    t = time.monotonic()
    try:
        de.value
    except KeyboardInterrupt:
        print(f"interrupted {time.monotonic() - t:.2f} {de.id}", flush=True)
    print("status", de.status.value, flush=True)
    print("still usable", d.add(1, 2).value, flush=True)
    """
)


def test_ctrl_c_stops_the_wait_and_the_run(echo_runtime: LocalRuntime, tmp_path: Path) -> None:
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C)
    proc = subprocess.Popen(
        [sys.executable, str(script), echo_runtime.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "waiting"
    time.sleep(0.8)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    line = proc.stdout.readline().split()
    latency = time.monotonic() - sent
    proc.wait(timeout=30)
    # Read the rest through the same buffered file: readline() may already hold it
    # (communicate() would read the pipe underneath and miss those lines).
    out = proc.stdout.read()
    err = proc.stderr.read() if proc.stderr else ""
    assert line[0] == "interrupted", err
    assert latency < 0.5, latency
    assert "status CANCELLED" in out
    assert "still usable 3" in out


FORK = textwrap.dedent(
    """
    import os, sys
    from daisi_async import Daisi
    d = Daisi("Echo", base_url=sys.argv[1])
    assert d.add(1, 1).value == 2
    pid = os.fork()
    if pid == 0:
        child = Daisi("Echo", base_url=sys.argv[1])
        os._exit(0 if child.add(2, 2).value == 4 else 1)
    _, status = os.waitpid(pid, 0)
    print("child", os.waitstatus_to_exitcode(status), "parent", d.add(3, 3).value)
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork(echo_runtime: LocalRuntime, tmp_path: Path) -> None:
    script = tmp_path / "fork.py"
    script.write_text(FORK)
    out = subprocess.run(
        [sys.executable, str(script), echo_runtime.url], capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "child 0 parent 6.0", out.stderr


def test_calls_go_straight_to_the_shared_pool(
    daisi_runtime: LocalRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    """The facade's shared client is one daisi-async made: its requests skip httpx's
    client layers as ``AsyncDaisi``'s own do (httpx logs none of them)."""
    caplog.set_level(logging.INFO, logger="httpx")
    with Daisi("Add Two Numbers", base_url=daisi_runtime.url) as d:
        assert d.compute(2, 3).value == 5
        assert d.map("compute", [(1, 1), (2, 2)]).value == [2, 4]
    assert [r.getMessage() for r in caplog.records if r.name == "httpx"] == []
