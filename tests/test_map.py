"""d.map / d.as_completed: bounded fan-out, ordering, fail-fast."""

from __future__ import annotations

import anyio
import pytest

from daisi_async import AsyncDaisi, DaisiExecutionError, DaisiSerializationError, ExecutionStatus
from daisi_async.testing import LocalRuntime

pytestmark = pytest.mark.anyio


async def test_map_awaitable_in_order(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        items = [{"a": i, "b": 1} for i in range(50)]
        assert await d.map("add", items, max_concurrency=8) == [i + 1 for i in range(50)]
        assert await d.map("add", [(i, 2) for i in range(5)]) == [2, 3, 4, 5, 6]
        assert await d.map("echo", ["x", "y"]) == ["x", "y"]


async def test_map_bounds_executions_in_flight(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        run = d.map("add", [(i, 0) for i in range(20)], max_concurrency=3)
        seen = []
        async for value in run:
            started = [ex for ex in run.executions if ex.started]
            unfinished = [ex for ex in started if not ex._last_status.is_terminal]
            assert len(unfinished) <= 3
            seen.append(value)
        assert seen == list(range(20))


async def test_as_completed_yields_in_completion_order(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        await d.workers.set(3)
        try:
            # Three warm workers first (a loaded machine starts them slowly), then runs
            # whose lengths differ by far more than the scheduling noise.
            with anyio.fail_after(60):
                for _ in range(600):  # a remote state: polled
                    if await d.workers.status() != "increasing":
                        break
                    await anyio.sleep(0.1)
                await d.map("sleep", [0.3, 0.3, 0.3], max_concurrency=3)
            delays = [2.0, 0.1, 1.0]
            order = [v async for v in d.as_completed("sleep", delays, max_concurrency=3)]
        finally:
            await d.workers.set(1)
        assert sorted(order) == sorted(delays)
        assert order[0] == 0.1


async def test_map_fail_fast_cancels_siblings(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        run = d.map("sleep", [0.05, "x", 30, 30], max_concurrency=4)
        with pytest.raises(DaisiExecutionError) as info:
            await run
        assert isinstance(info.value, TypeError)
        statuses = [await ex.status() for ex in run.executions]
        assert statuses[:2] == [ExecutionStatus.FINISHED, ExecutionStatus.FAILED]
        assert statuses[2:] == [ExecutionStatus.CANCELLED, ExecutionStatus.CANCELLED]


async def test_map_return_exceptions(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        out = await d.map("add", [(1, 1), ("x", 1)], return_exceptions=True)
        assert out[0] == 2
        assert isinstance(out[1], DaisiExecutionError)


async def test_map_binds_arguments_before_sending(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        with pytest.raises(TypeError):
            d.map("add", [{"a": 1}, {"nope": 2}])
        run = d.map("add", [(1, 1)])
        assert run.executions == []
        assert await run == [2]
        assert await run.executions[0].status() is ExecutionStatus.FINISHED


async def test_a_failed_submission_is_one_error_not_a_group(echo_runtime: LocalRuntime) -> None:
    """An item that can't be sent fails its own execution, as any failure does."""
    unsendable = (x for x in [1])
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        out = await d.map("echo", [1, unsendable, 3], return_exceptions=True)
        assert out[0] == 1 and out[2] == 3
        assert isinstance(out[1], DaisiSerializationError)
        with pytest.raises(DaisiSerializationError, match="argument 'value'"):
            await d.map("echo", [1, unsendable, unsendable, 3], max_concurrency=4)
        with pytest.raises(DaisiSerializationError):
            await d.map("echo", [unsendable, 2], ordered=False)
        values = [v async for v in d.as_completed("echo", [1, unsendable], return_exceptions=True)]
        assert sorted(type(v).__name__ for v in values) == ["DaisiSerializationError", "int"]
        assert await d.map("echo", [4, 5]) == [4, 5]


async def test_as_completed_with_a_failure_is_one_error(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        with pytest.raises(DaisiExecutionError):
            async for _ in d.as_completed("add", [("x", 1), (1, 1)]):
                pass


async def test_leaving_a_map_block_early_cancels_what_it_started(
    echo_runtime: LocalRuntime,
) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        with anyio.fail_after(20):
            async with d.map("sleep", [0.1, 30, 30, 30, 30], max_concurrency=3) as run:
                async for value in run:
                    assert value == 0.1
                    break
            assert run.closed
            statuses = [await ex.status() for ex in run.executions]
            assert statuses == [
                ExecutionStatus.FINISHED,
                ExecutionStatus.CANCELLED,
                ExecutionStatus.CANCELLED,
                ExecutionStatus.CANCELLED,  # started when the first value was handed out
                ExecutionStatus.NOT_STARTED,
            ]
            assert await d.echo("after") == "after"
