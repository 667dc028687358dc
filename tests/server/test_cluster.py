"""``daisi serve --cluster``: the same API, executions on a real Dask cluster.

A scheduler and two worker processes (``dask scheduler``, ``dask worker``) serve the
whole module; the runtime is a real ``daisi serve`` process pointed at them. The faults
(a worker or the scheduler lost) are in test_cluster_faults.py. Async tests run on
asyncio only here: the client is the same as everywhere (tested on trio elsewhere);
what is tested is the server's backend.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from tests.server.cluster_daisies import UNSANDBOXED, cluster_daisies
from tests.support.daisi_folders import make_daisi
from tests.support.dask_cluster import DaskCluster, cluster
from tests.support.wheels import toy_links, uv_cache
from tests.test_chaining import CountingTransport
from tests.test_serialization import MAIN_SCRIPT

from daisi_async import AsyncDaisi, Daisi, DaisiExecutionError, ExecutionStatus
from daisi_async.server.backends.dask.protocol import IN_FLIGHT_PER_SLOT
from daisi_async.server.workers.sandbox import find_bwrap
from daisi_async.testing import LocalRuntime

__all__ = ["cluster", "toy_links", "uv_cache"]  # fixtures, used by name

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def runtime(
    cluster: DaskCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalRuntime]:
    root = cluster_daisies(tmp_path_factory.mktemp("daisies"))
    args = ["--cluster", cluster.address, *UNSANDBOXED]
    with LocalRuntime(root, workers=0, extra_args=args) as rt:
        yield rt


def read_bytes_of(pid: int) -> int:
    """Bytes the process has read so far (files and sockets): /proc/PID/io ``rchar``."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")


async def test_calls_run_on_the_dask_workers(runtime: LocalRuntime, cluster: DaskCluster) -> None:
    async with AsyncDaisi("Where", base_url=runtime.url) as d:
        info = await d.where()
        assert info["dask"] in cluster.worker_pids()
        worker = psutil.Process(info["pid"])  # a worker process of its own, below the Dask one
        assert worker.ppid() == info["dask"]
        assert "daisi_async.server.workers.program" in worker.cmdline()
    async with AsyncDaisi("Add Two Numbers", base_url=runtime.url) as d:
        assert await d.compute(firstNumber=5, secondNumber=6) == 11
        ex = await d.compute_(firstNumber=1, secondNumber=2)
        assert await ex == 3


def test_sync_facade(runtime: LocalRuntime) -> None:
    with Daisi("Add Two Numbers", base_url=runtime.url) as d:
        de = d.compute(firstNumber=5, secondNumber=6)
        assert de.status == "NOT_STARTED"
        assert de.value == 11
        assert de.status == "FINISHED"
        assert d.workers.number >= 0


async def test_logs_arrive_live(runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Where", base_url=runtime.url) as d:
        await d.stamp(after=0)  # a warm worker process
        ex = await d.stamp_(after=2.0)
        line = await anext(aiter(ex.logs()))
        seen = time.time()
        printed = float(line)
        assert 0 <= seen - printed < 1.0  # the target (100 ms) is measured by the benchmarks
        assert await ex.status() is ExecutionStatus.RUNNING  # it is still running
        assert await ex == 2.0
        assert await ex.logs() == [line]


async def test_live_logging_example(runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Live Logging", base_url=runtime.url) as d:
        ex = d.live_log_test(firstNumber=5, secondNumber=6, delay=1)
        await ex.start()
        lines = [line async for line in ex.logs()]
        assert await ex == 11
        assert lines[-1] == "Done: 5 + 6 = 11"


async def test_failure_brings_the_traceback(runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Always Fails", base_url=runtime.url) as d:
        with pytest.raises(ZeroDivisionError) as info:
            await d.divide(numerator=1, denominator=0)
        assert isinstance(info.value, DaisiExecutionError)
        assert "numerator / denominator" in info.value.traceback
        ex = await d.fail_(message="boom")
        with pytest.raises(ValueError, match="boom"):
            await ex
        assert await ex.logs() == ["about to fail with 'boom'"]


def test_class_from_callers_main_travels_by_value(runtime: LocalRuntime, tmp_path: Path) -> None:
    script = tmp_path / "main_class.py"
    script.write_text(MAIN_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), runtime.url], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["MapStack 11 11", "MapStack 2 (2, 3)"]


async def test_chained_results_pass_neither_runtime_nor_client(runtime: LocalRuntime) -> None:
    size = 20_000_000
    assert runtime.process is not None
    transport = CountingTransport()
    async with (
        httpx.AsyncClient(transport=transport) as client,
        AsyncDaisi("Where", base_url=runtime.url, client=client) as d,
    ):
        await d.length(b"warm")
        before = read_bytes_of(runtime.process.pid)
        first = await d.big_(size)
        second = await d.length_(first)  # the 20 MB move from worker to worker, at most
        assert await second == size
        read = read_bytes_of(runtime.process.pid) - before
        assert read < 2_000_000, read  # requests, the store: not the result
        assert transport.received[0] < 50_000
        # A client that asks for the large result has it fetched into the store, once.
        assert await first == bytes(size)
        assert read_bytes_of(runtime.process.pid) - before > size
        assert await first == bytes(size)


async def test_chained_result_moves_from_worker_to_worker(runtime: LocalRuntime) -> None:
    """When the worker that keeps a result has no room, the chained execution runs on
    another one, which fetches the bytes from the first (not through the runtime)."""
    size = 5_000_000
    assert runtime.process is not None
    async with (
        AsyncDaisi("Where Else", base_url=runtime.url) as maker,
        AsyncDaisi("Where", base_url=runtime.url) as user,
    ):
        await maker.workers.set(1)  # Where Else runs on one Dask worker only: A
        first = await maker.big_(size)
        await first.wait()
        keeper = int((await first.logs())[0].split()[1])
        busy = [await maker.where_(seconds=1.5) for _ in range(IN_FLIGHT_PER_SLOT)]  # A is full
        before = read_bytes_of(runtime.process.pid)
        second = await user.length_(first)
        assert await second == size
        (line,) = await second.logs()
        assert int(line.split()[1]) != keeper  # it ran on B
        assert read_bytes_of(runtime.process.pid) - before < 2_000_000
        assert {r["dask"] for r in await asyncio.gather(*busy)} == {keeper}


async def test_map(runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Add Two Numbers", base_url=runtime.url) as d:
        items = [{"firstNumber": i, "secondNumber": 1} for i in range(40)]
        assert await d.map("compute", items, max_concurrency=16) == [i + 1 for i in range(40)]
        values = await asyncio.gather(
            *(d.compute(firstNumber=i, secondNumber=2) for i in range(200))
        )
        assert values == [i + 2 for i in range(200)]


async def test_cancel_kills_the_remote_process(runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Where", base_url=runtime.url) as d:
        ex = await d.where_(seconds=3.5)
        pid = int((await anext(aiter(ex.logs()))).split()[1])
        assert psutil.pid_exists(pid)
        cancelled = time.monotonic()
        await ex.cancel()
        assert await ex.status() is ExecutionStatus.CANCELLED
        while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() - cancelled < 3.0, "the worker process still runs"
            await asyncio.sleep(0.02)
        assert await d.where() is not None  # the Daisi still works


async def test_time_and_memory_limits_hold(runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Where", base_url=runtime.url) as d:
        with pytest.raises(DaisiExecutionError) as info:
            await d.where(seconds=30)  # Where's time limit: 4 s
        assert info.value.exc_type == "daisi.TimeLimitExceeded"
        with pytest.raises(DaisiExecutionError) as info:
            await d.hog(mb=600)  # Where's memory limit: 300 MB
        assert info.value.exc_type == "daisi.MemoryLimitExceeded"
        assert (await d.where())["pid"] > 0


async def test_workers_set_spreads_over_the_cluster(runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Where", base_url=runtime.url) as d:
        await d.workers.set(1)  # one worker process on the cluster: one run at a time
        assert await d.workers.number() == 1
        started = time.monotonic()
        runs = await asyncio.gather(*(d.where(seconds=1) for _ in range(3)))
        assert time.monotonic() - started >= 3.0
        assert len({r["pid"] for r in runs}) == 1
        await d.workers.set(2)  # one on each Dask worker
        assert await d.workers.number() == 2
        runs = await asyncio.gather(*(d.where(seconds=1.5) for _ in range(2)))
        assert len({r["dask"] for r in runs}) == 2


async def test_kept_result_survives_a_runtime_restart(runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Where", base_url=runtime.url) as d:
        ex = await d.big_(1_000_000)  # above the inline size: kept on its Dask worker
        await ex.wait()
        eid = ex.id
    runtime.restart()
    async with AsyncDaisi("Where", base_url=runtime.url) as d:
        again = await d.execution(eid)
        assert await again == bytes(1_000_000)


TOY_APP = """
import sys

import toypkg


def version() -> list:
    return [toypkg.VERSION, sys.prefix]
"""


async def test_requirements_are_installed_on_the_dask_workers(
    cluster: DaskCluster, tmp_path: Path, toy_links: Path
) -> None:
    """A Daisi's requirements.txt gets an environment built with uv on each Dask worker
    (the --find-links folder is on this machine, as the workers are)."""
    make_daisi(tmp_path, "toy", {"app.py": TOY_APP, "requirements.txt": "toypkg==2.0\n"})
    args = ["--cluster", cluster.address, "--find-links", str(toy_links), "--offline"]
    with LocalRuntime(tmp_path, workers=0, extra_args=args) as rt:
        async with AsyncDaisi("toy", base_url=rt.url) as d:
            version, prefix = await d.version()
    assert version == "2.0"
    assert str(cluster.dir) in prefix and "/daisi/envs/" in prefix  # on a Dask worker


async def test_reload_sends_the_edited_code_to_the_workers(
    cluster: DaskCluster, tmp_path: Path
) -> None:
    folder = make_daisi(tmp_path, "version", {"app.py": "def version() -> int:\n    return 1\n"})
    args = ["--cluster", cluster.address, "--reload"]
    with LocalRuntime(tmp_path, workers=0, extra_args=args) as rt:
        async with AsyncDaisi("version", base_url=rt.url) as d:
            assert await d.version() == 1
        (folder / "app.py").write_text("def version() -> int:\n    return 2\n")
        deadline = time.monotonic() + 60
        while True:
            async with AsyncDaisi("version", base_url=rt.url) as d:
                if await d.version() == 2:
                    break
            assert time.monotonic() < deadline, rt.logs()
            await asyncio.sleep(0.2)


@pytest.mark.skipif(find_bwrap() is None, reason="bubblewrap (bwrap) is not installed")
async def test_sandbox_on_the_dask_workers(cluster: DaskCluster, tmp_path: Path) -> None:
    """A sandboxing runtime's Daisies run sandboxed on the Dask workers too: in a PID
    namespace of their own, their Daisi's folder the only one they see."""
    root = cluster_daisies(tmp_path)
    args = ["--cluster", cluster.address, "--isolation", "sandbox"]
    with LocalRuntime(root, workers=0, extra_args=args) as rt:
        async with AsyncDaisi("Where", base_url=rt.url) as d:
            seen = await d.peek()
    assert seen["processes"] <= 3, seen  # bwrap's init, the worker (and ls's parent)
    assert len(seen["beside"]) == 1, seen  # not the other Daisies unpacked on the worker
    assert seen["beside"][0].startswith(tuple("0123456789abcdef")), seen


async def test_settings_and_secrets_reach_the_dask_workers(
    cluster: DaskCluster, tmp_path: Path
) -> None:
    """``[env]`` and the Daisi's secrets reach its processes on the Dask workers; another
    Daisi's secret does not."""
    app = "import os\n\ndef env(name: str) -> str | None:\n    return os.environ.get(name)\n"
    toml = 'name = "Settings"\n[env]\nMODE = "fast"\n'
    root = tmp_path / "daisies"
    make_daisi(root, "settings", {"app.py": app, "daisi.toml": toml})
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('["Settings"]\nAPI_KEY = "s3cr3t"\n\n["Other"]\nOTHER_KEY = "no"\n')
    args = ["--cluster", cluster.address, "--secrets", str(secrets)]
    with LocalRuntime(root, workers=0, extra_args=args) as rt:
        async with AsyncDaisi("Settings", base_url=rt.url) as d:
            assert await d.env("MODE") == "fast"
            assert await d.env("API_KEY") == "s3cr3t"
            assert await d.env("OTHER_KEY") is None
