"""AsyncDaisiExecution: lazy start, result, status and log streams, cancel, re-attach."""

from __future__ import annotations

import math
import time

import anyio
import pytest

from daisi_async import (
    AsyncDaisi,
    AsyncDaisiExecution,
    DaisiCancelledError,
    DaisiExecutionError,
    DaisiNotFoundError,
    DaisiTimeoutError,
    ExecutionStatus,
)
from daisi_async.testing import LocalRuntime

pytestmark = pytest.mark.anyio


async def test_start_is_idempotent_and_await_equals_result(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        ex = d.echo({"a": [1, 2]})
        async with anyio.create_task_group() as tg:  # concurrent starts: one submission
            for _ in range(3):
                tg.start_soon(ex.start)
        eid = ex.id
        assert eid is not None
        assert await ex.start() == eid
        assert await ex.result(timeout=30) == {"a": [1, 2]}
        assert await ex == {"a": [1, 2]}
        assert await ex.status() is ExecutionStatus.FINISHED


async def test_status_transitions_in_order(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        ex = await d.sleep_(0.5)
        seen = [s async for s in ex.status()]
        assert seen[-1] is ExecutionStatus.FINISHED
        assert seen == sorted(seen, key=list(ExecutionStatus).index)
        assert ExecutionStatus.RUNNING in seen
        assert len(seen) == len(set(seen))


async def test_live_logs_arrive_while_running(daisi_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Live Logging", base_url=daisi_runtime.url) as d:
        ex = d.live_log_test(firstNumber=5, secondNumber=6, delay=2)
        await ex.start()
        t0 = time.monotonic()
        lines: list[tuple[float, str]] = []
        async for line in ex.logs():
            lines.append((time.monotonic() - t0, line))
        assert await ex == 11
        first_at = lines[0][0]
        assert first_at < 1.0, lines  # the run takes 2 s: the first line came while it ran
        assert [ln for _, ln in lines] == await ex.logs()
        assert any("Step 1/" in ln for _, ln in lines)


async def test_logs_so_far_and_before_start(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        ex = d.sleep(seconds=1.0, lines=4)
        assert await ex.logs() == []
        await ex.start()
        await anyio.sleep(0.6)
        partial = await ex.logs()
        assert 1 <= len(partial) < 4
        await ex
        assert await ex.logs() == [f"line {i}" for i in range(4)]


async def test_result_timeout_leaves_the_run_going(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        ex = d.sleep(0.8)
        with pytest.raises(DaisiTimeoutError) as info:
            await ex.result(timeout=0.1)
        assert isinstance(info.value, TimeoutError)
        assert await ex.result(timeout=30) == 0.8


@pytest.mark.parametrize(
    ("timeout", "error"),
    [(-1, ValueError), (-0.5, ValueError), (math.nan, ValueError), ("1", TypeError)],
    ids=repr,
)
async def test_bad_result_timeout_is_refused_at_once(
    echo_runtime: LocalRuntime, timeout: object, error: type[Exception]
) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        ex = d.sleep(0.2)
        with anyio.fail_after(5), pytest.raises(error, match="timeout"):
            await ex.result(timeout=timeout)  # type: ignore[arg-type]
        assert not ex.started  # nothing was submitted
        started = await d.sleep_(0.2)
        with anyio.fail_after(5), pytest.raises(error, match="timeout"):
            await started.result(timeout=timeout)  # type: ignore[arg-type]
        assert await ex.result(timeout=30) == 0.2
        assert await started.result(timeout=None) == 0.2


async def test_result_timeout_zero_polls(echo_runtime: LocalRuntime) -> None:
    """``timeout=0``: the value if the run has ended, else DaisiTimeoutError at once."""
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        ex = d.sleep(2)
        with anyio.fail_after(5), pytest.raises(DaisiTimeoutError, match="keeps running"):
            await ex.result(timeout=0)
        assert ex.started  # started (result() starts), not waited for
        assert await ex.status() in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)
        await ex.wait()
        assert await ex.result(timeout=0) == 2
        done = await d.echo_(5)
        with anyio.fail_after(10):
            await done.wait()
        assert await done.result(timeout=0) == 5  # ended, value not read yet: read now


@pytest.mark.parametrize(
    ("eid", "error"),
    [("", ValueError), ("a\ud800", ValueError), (5, TypeError), (None, TypeError)],
    ids=repr,
)
async def test_from_id_refuses_bad_ids(
    echo_runtime: LocalRuntime, eid: object, error: type[Exception]
) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        with pytest.raises(error, match="execution_id"):
            await AsyncDaisiExecution.from_id(d, eid)  # type: ignore[arg-type]
        assert await d.echo(1) == 1


@pytest.mark.parametrize(
    "eid",
    ["x/cancel", "x/logs", "../daisies", "a?b=c", "a#b", " "],
    ids=repr,
)
async def test_from_id_with_odd_characters_is_not_found(
    echo_runtime: LocalRuntime, eid: str
) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        with pytest.raises(DaisiNotFoundError):
            await AsyncDaisiExecution.from_id(d, eid)


async def test_cancelling_the_waiting_task_only_stops_the_wait(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        ex = d.sleep(0.8)
        with anyio.move_on_after(0.2):
            await ex
        assert await ex.status() in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)
        assert await ex == 0.8


async def test_cancel_stops_the_remote_run(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        ex = await d.sleep_(30)
        async for status in ex.status():
            if status is ExecutionStatus.RUNNING:
                break
        assert await ex.cancel() is ExecutionStatus.CANCELLED
        assert await ex.status() is ExecutionStatus.CANCELLED
        with pytest.raises(DaisiCancelledError):
            await ex
        assert await d.echo("after") == "after"  # the worker was replaced


async def test_cancel_before_start_never_submits(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        ex = d.echo(1)
        assert await ex.cancel() is ExecutionStatus.CANCELLED
        assert ex.id is None


async def test_from_id_reattaches(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        ex = await d.sleep_(0.3, lines=2)
        eid = ex.id
        assert eid
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as other:
        again = await AsyncDaisiExecution.from_id(other, eid)
        assert await again == 0.3
        assert await again.logs() == ["line 0", "line 1"]
        with pytest.raises(DaisiNotFoundError):
            await AsyncDaisiExecution.from_id(other, "00000000-0000-0000-0000-000000000000")


async def test_failure_carries_remote_traceback(daisi_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Always Fails", base_url=daisi_runtime.url) as d:
        ex = d.divide(1, 0)
        with pytest.raises(ZeroDivisionError) as info:
            await ex
        err = info.value
        assert isinstance(err, DaisiExecutionError)
        assert err.exc_type == "builtins.ZeroDivisionError"
        assert err.execution_id == ex.id
        assert "always-fails/app.py" in err.traceback
        assert "division by zero" in str(err) and "Remote traceback" in str(err)
        assert await ex.status() is ExecutionStatus.FAILED
        with pytest.raises(ValueError, match="kaboom"):
            await d.fail(message="kaboom")


async def test_gather_2000_in_order(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        values = await _gather([d.add(i, 1) for i in range(2000)])
        assert values == [i + 1 for i in range(2000)]


async def _gather(executions: list[AsyncDaisiExecution]) -> list[object]:
    results: list[object] = [None] * len(executions)

    async def one(i: int, ex: AsyncDaisiExecution) -> None:
        results[i] = await ex

    async with anyio.create_task_group() as tg:
        for i, ex in enumerate(executions):
            tg.start_soon(one, i, ex)
    return results
