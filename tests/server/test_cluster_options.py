"""``daisi serve --cluster``: the option's values, ``local:N``, and a scheduler that is
not there (the runtime serves at once; calls fail after the cluster wait, saying why)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from tests.server.cluster_daisies import UNSANDBOXED, cluster_daisies
from tests.server.conftest import EXAMPLES
from tests.support.dask_cluster import free_port

from daisi_async import AsyncDaisi, DaisiExecutionError
from daisi_async.server.backends.dask.address import parse_cluster
from daisi_async.testing import LocalRuntime

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    ("text", "scheduler", "local"),
    [
        ("tcp://10.0.0.5:8786", "tcp://10.0.0.5:8786", None),
        ("10.0.0.5:8786", "tcp://10.0.0.5:8786", None),
        ("tls://sched.example.org:8786", "tls://sched.example.org:8786", None),
        ("tcp://[::1]:8786", "tcp://[::1]:8786", None),
        ("local:3", None, 3),
    ],
)
def test_cluster_addresses(text: str, scheduler: str | None, local: int | None) -> None:
    address = parse_cluster(text)
    assert (address.scheduler, address.local_workers) == (scheduler, local)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("nonsense", "not a Dask scheduler address"),
        ("tcp://host", "not a Dask scheduler address"),
        ("tcp://host:99999", "not a Dask scheduler address"),
        ("http://host:8786", "unknown scheme 'http'"),
        ("local:0", "local:N needs a number of Dask workers from 1 to 256"),
        ("local:x", "local:N needs a number"),
    ],
)
def test_bad_cluster_option_is_refused(text: str, says: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    cmd = [sys.executable, "-m", "daisi_async", "serve", str(EXAMPLES), "--port", "0"]
    out = subprocess.run(
        [*cmd, "--store", str(store), "--cluster", text], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert f"Invalid value for '--cluster': {says}" in out.stderr
    assert not store.exists()  # nothing was started
    assert parse_cluster("local:1").local_workers == 1  # and a good value parses


async def test_unreachable_scheduler(tmp_path: Path) -> None:
    """The runtime serves at once; a call waits QUEUED for the cluster wait, then fails
    saying which scheduler can't be reached; what does not need the cluster still works."""
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {"DASK_DAISI__CLUSTER_WAIT": "3"}
    started = time.monotonic()
    with LocalRuntime(EXAMPLES, workers=0, extra_args=["--cluster", address], env=env) as rt:
        assert time.monotonic() - started < 30
        async with AsyncDaisi("Add Two Numbers", base_url=rt.url) as d:
            ex = await d.compute_(firstNumber=1, secondNumber=2)
            with pytest.raises(DaisiExecutionError) as info:
                await ex.result(timeout=60)
            assert info.value.exc_type == "daisi.ClusterUnavailable"
            assert address in str(info.value)
        async with httpx.AsyncClient() as http:
            assert (await http.get(rt.url + "/healthz")).status_code == 200
        deadline = time.monotonic() + 60
        while f"can't reach the Dask scheduler at {address}" not in rt.logs():
            assert time.monotonic() < deadline, rt.logs()
            await asyncio.sleep(0.1)


async def test_local_cluster_of_the_runtime(tmp_path: Path) -> None:
    """``--cluster local:1`` starts a Dask worker below the runtime, which runs the call."""
    root = cluster_daisies(tmp_path)
    args = ["--cluster", "local:1", *UNSANDBOXED]
    with LocalRuntime(root, workers=0, extra_args=args) as rt:
        assert rt.process is not None
        async with AsyncDaisi("Where", base_url=rt.url) as d:
            info = await d.where()
        below = {p.pid for p in psutil.Process(rt.process.pid).children(recursive=True)}
        assert info["dask"] in below and info["pid"] in below
        assert info["dask"] != rt.process.pid  # a Dask worker process, not the runtime
