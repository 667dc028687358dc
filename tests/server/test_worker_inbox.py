"""The worker program's side of lanes, frame by frame: ``queued`` jobs, ``next``,
``begin``, ``cancel`` and ``skipped`` (a real worker process, driven by hand)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daisi_async.server._frames import encode_head, read_frame_async
from daisi_async.server.workers.jobs import Job, run_frame
from daisi_async.server.workers.process import WorkerProcess, launch, wait_ready

from .test_workers import make_daisi

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """The worker's socket is read with asyncio streams."""
    return "asyncio"


APP = """
import time


def nap(seconds):
    time.sleep(seconds)
    return seconds
"""


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[WorkerProcess]:
    folder = make_daisi(tmp_path, APP)
    process = await launch(sys.executable, directory=folder, entry="app.py", env={})
    await wait_ready(process, timeout=30)
    yield process
    process.kill()
    await process.finish(0)


def send(worker: WorkerProcess, eid: str, seconds: float, *, queued: bool = False) -> None:
    job = Job(eid, "nap", {"seconds": {"json": seconds}}, timeout=30, result_path="/dev/null")
    head, _ = run_frame(job, queued=queued)
    worker.writer.write(head)


async def frames(worker: WorkerProcess, n: int) -> list[dict[str, Any]]:
    got = []
    for _ in range(n):
        frame = await read_frame_async(worker.reader)
        assert frame is not None
        got.append({k: v for k, v in frame[0].items() if k in ("op", "eid", "next")})
    return got


async def test_done_names_the_job_that_begins_next(worker: WorkerProcess) -> None:
    send(worker, "a", 0.2)
    send(worker, "b", 0, queued=True)
    assert await frames(worker, 2) == [
        {"op": "done", "eid": "a", "next": "b"},
        {"op": "done", "eid": "b", "next": None},
    ]


async def test_a_queued_job_that_no_done_named_is_announced(worker: WorkerProcess) -> None:
    send(worker, "a", 0)
    assert await frames(worker, 1) == [{"op": "done", "eid": "a", "next": None}]
    send(worker, "b", 0, queued=True)  # (the server sent it before it read a's done)
    assert await frames(worker, 2) == [
        {"op": "begin", "eid": "b"},
        {"op": "done", "eid": "b", "next": None},
    ]


async def test_a_job_not_begun_is_taken_back_even_during_a_long_job(
    worker: WorkerProcess,
) -> None:
    send(worker, "a", 0.5)  # long enough for the watcher thread to read what comes
    send(worker, "b", 0, queued=True)
    worker.writer.write(encode_head({"op": "cancel", "eid": "b"}))
    assert await frames(worker, 2) == [
        {"op": "skipped", "eid": "b"},
        {"op": "done", "eid": "a", "next": None},
    ]


async def test_a_cancel_for_a_job_that_began_is_ignored(worker: WorkerProcess) -> None:
    send(worker, "a", 0.3)
    await asyncio.sleep(0.1)  # "a" has begun
    worker.writer.write(encode_head({"op": "cancel", "eid": "a"}))
    send(worker, "b", 0, queued=True)
    assert await frames(worker, 2) == [
        {"op": "done", "eid": "a", "next": "b"},
        {"op": "done", "eid": "b", "next": None},
    ]
