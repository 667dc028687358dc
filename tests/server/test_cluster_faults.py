"""``daisi serve --cluster`` when the cluster fails: a Dask worker killed mid-run (the
execution runs again elsewhere, at least once), a kept result lost with its worker, the
retry budget spent, the scheduler lost and back.

Real processes throughout: ``dask scheduler`` and two ``dask worker`` processes (each
with its nanny, which starts a killed worker again), a real ``daisi serve``, SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.server.cluster_daisies import UNSANDBOXED, cluster_daisies
from tests.support.dask_cluster import DaskCluster, cluster

from daisi_async import AsyncDaisi, AsyncDaisiExecution, DaisiExecutionError, ExecutionStatus
from daisi_async.testing import LocalRuntime

__all__ = ["cluster"]  # a fixture, used by name

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def daisies(tmp_path_factory: pytest.TempPathFactory) -> object:
    return cluster_daisies(tmp_path_factory.mktemp("daisies"))


@pytest.fixture(scope="module")
def runtime(cluster: DaskCluster, daisies: object) -> Iterator[LocalRuntime]:
    args = ["--cluster", cluster.address, *UNSANDBOXED]
    with LocalRuntime(str(daisies), workers=0, extra_args=args) as rt:
        yield rt


@pytest.fixture
def healthy(cluster: DaskCluster) -> Iterator[DaskCluster]:
    """The cluster, whole again after the test (killed workers restarted by their nannies)."""
    yield cluster
    cluster.wait_for_workers()


def dask_pid(line: str) -> int:
    """The Dask worker pid in a ``pid P dask D`` or ``dask D`` line."""
    words = line.split()
    return int(words[words.index("dask") + 1])


async def first_line(ex: AsyncDaisiExecution) -> str:
    """The first log line of a running execution, as soon as it is printed."""
    return str(await anext(aiter(ex.logs())))


async def test_killed_worker_runs_the_execution_again(
    runtime: LocalRuntime, healthy: DaskCluster
) -> None:
    async with AsyncDaisi("Where", base_url=runtime.url) as d:
        ex = await d.where_(seconds=2.5)
        killed = dask_pid(await first_line(ex))
        os.kill(killed, signal.SIGKILL)
        result = await ex.result(timeout=60)
        assert result["dask"] != killed
        logs = await ex.logs()
        assert [dask_pid(x) for x in logs if x.startswith("pid ")] == [killed, result["dask"]]
        (note,) = [x for x in logs if x.startswith("daisi runtime:")]
        assert "was lost" in note and "running this execution again" in note
        assert "attempt 2 of 4" in note and "at least once" in note


async def test_kept_result_is_lost_with_its_worker(
    runtime: LocalRuntime, healthy: DaskCluster
) -> None:
    async with AsyncDaisi("Where", base_url=runtime.url) as d:
        made = await d.big_(1_000_000)  # kept on the Dask worker that made it
        await made.wait()
        keeper = dask_pid((await made.logs())[0])
        os.kill(keeper, signal.SIGKILL)
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=runtime.api) as http:
            while True:
                r = await http.get(f"/v1/executions/{made.id}/result")
                if r.status_code != 503:  # 503: the runtime has not seen the loss yet
                    break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
        assert r.status_code == 410, r.text
        err = r.json()["error"]
        assert err["code"] == "result_gone" and "which is gone" in err["message"]
        with pytest.raises(DaisiExecutionError) as info:
            await d.length(made)
        assert info.value.exc_type == "daisi.UpstreamFailed"
        assert made.id in str(info.value) and "which is gone" in str(info.value)
        assert await d.length(b"abc") == 3  # the next call works


async def test_retry_budget_then_worker_lost(
    cluster: DaskCluster, daisies: object, healthy: DaskCluster
) -> None:
    env = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}
    args = ["--cluster", cluster.address, *UNSANDBOXED]
    with LocalRuntime(str(daisies), workers=0, extra_args=args, env=env) as rt:
        async with AsyncDaisi("Where", base_url=rt.url) as d:
            ex = await d.kill_my_dask_worker_()
            with pytest.raises(DaisiExecutionError) as info:
                await ex.result(timeout=120)
            assert info.value.exc_type == "daisi.WorkerLost"
            assert "lost 2 times" in str(info.value) and "allowed-failures = 1" in str(info.value)
            logs = await ex.logs()
            assert len([x for x in logs if x.startswith("dask ")]) == 2
            assert len([x for x in logs if "attempt 2 of 2" in x]) == 1


async def test_scheduler_lost_then_back(runtime: LocalRuntime, cluster: DaskCluster) -> None:
    async with AsyncDaisi("Echo", base_url=runtime.url) as d:
        done = await d.add_(1, 2)
        assert await done == 3
        running = await d.sleep_(seconds=30)
        async for status in running.status():
            if status is ExecutionStatus.RUNNING:
                break
        lost = time.monotonic()
        cluster.kill_scheduler()
        with pytest.raises(DaisiExecutionError) as info:
            await running.result(timeout=60)
        assert time.monotonic() - lost < 10
        assert info.value.exc_type == "daisi.ClusterUnavailable"
        assert "Dask scheduler" in str(info.value)
        # What the runtime stored is still served; a new call waits for the cluster.
        assert await (await d.execution(done.id)) == 3
        waiting = await d.add_(2, 3)
        await asyncio.sleep(1.0)
        assert await waiting.status() is ExecutionStatus.QUEUED
        cluster.stop_workers()  # they shut down with their scheduler
        cluster.start_scheduler()
        cluster.start_workers()
        assert await waiting.result(timeout=120) == 5
        assert await d.add(3, 4) == 7
