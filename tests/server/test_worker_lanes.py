"""Workers' lanes: jobs sent to a busy worker, what begins when, and what goes back to
the queue (real worker processes)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from daisi_async.server.workers import Job
from daisi_async.server.workers.pool import PoolRetired
from daisi_async.server.workers.room import WorkerRoom

from .test_workers import job, make_daisi, open_pool, value

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """The pool is asyncio-only."""
    return "asyncio"


APP = """
import os
import time


def span(seconds):
    began = time.monotonic()
    time.sleep(seconds)
    return [began, time.monotonic(), os.getpid()]


def die_later(seconds, code):
    time.sleep(seconds)
    os._exit(code)


def mark(path):
    open(path, "w").write("ran")
    return os.getpid()
"""


class Starts:
    """``on_start`` callbacks that note when each job began (server time)."""

    def __init__(self) -> None:
        self.at: dict[str, list[float]] = {}

    def of(self, eid: str):  # type: ignore[no-untyped-def]
        return lambda: self.at.setdefault(eid, []).append(time.monotonic())


async def test_a_busy_worker_has_its_next_job_before_the_current_one_ends(tmp_path: Path) -> None:
    # The server's loop is blocked while the first job ends: the second job can only
    # begin at once if it was already sent to the worker.
    folder = make_daisi(tmp_path, APP)
    async with open_pool(folder) as pool:
        first = asyncio.ensure_future(pool.run(job(tmp_path, "span", seconds=0.1)))
        second = asyncio.ensure_future(pool.run(job(tmp_path, "span", seconds=0)))
        await asyncio.sleep(0.02)  # both are sent
        time.sleep(0.4)  # noqa: ASYNC251 (the loop must stand still while the first job ends)
        (_, first_end, pid), (second_began, _, same_pid) = (
            value(await first),
            value(await second),
        )
        assert pid == same_pid
        assert second_began - first_end < 0.15  # (it would wait ~0.3 s for the loop)


async def test_jobs_sent_to_a_busy_worker_in_one_loop_turn_go_in_one_write(
    tmp_path: Path,
) -> None:
    folder = make_daisi(tmp_path, APP)
    async with open_pool(folder) as pool:
        (worker,) = pool._workers
        writes: list[int] = []
        send = worker.writer.writelines

        def counted(frames: list[bytes]) -> None:
            writes.append(len(frames))
            send(frames)

        worker.writer.writelines = counted  # type: ignore[method-assign]
        first = asyncio.ensure_future(pool.run(job(tmp_path, "span", seconds=0)))
        await asyncio.sleep(0)  # sent at once: the worker was idle
        assert len(writes) == 1
        behind = [
            asyncio.ensure_future(pool.run(job(tmp_path, "span", seconds=0))) for _ in range(5)
        ]
        outcomes = await asyncio.gather(first, *behind)
        assert len({value(o)[2] for o in outcomes}) == 1  # all on the one worker
        # The five went in one write (four, if the first job had ended and the next went
        # alone to the idle worker); one write per job before.
        assert max(writes[1:]) >= 4
        assert len(writes) <= 3


async def test_a_queued_job_runs_and_is_timed_from_when_it_begins(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    starts = Starts()
    async with open_pool(folder) as pool:
        long_job = job(tmp_path, "span", seconds=0.4)
        short_job = job(tmp_path, "span", timeout=0.3, seconds=0.1)
        outcomes = await asyncio.gather(
            pool.run(long_job, on_start=starts.of(long_job.eid)),
            pool.run(short_job, on_start=starts.of(short_job.eid)),
        )
        (_, long_end, _), (short_began, _, _) = (value(o) for o in outcomes)
        assert short_began >= long_end  # one at a time
        assert len(starts.at[short_job.eid]) == 1
        # RUNNING (on_start) comes once the long job has ended, not when it was sent
        assert starts.at[short_job.eid][0] - starts.at[long_job.eid][0] >= 0.35


async def test_jobs_behind_a_crash_go_back_to_the_queue(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    starts = Starts()
    async with open_pool(folder) as pool:
        (old_pid,) = pool.pids
        crash = job(tmp_path, "die_later", seconds=0.2, code=3)
        behind = [job(tmp_path, "span", seconds=0) for _ in range(3)]
        outcomes = await asyncio.gather(
            pool.run(crash, on_start=starts.of(crash.eid)),
            *(pool.run(j, on_start=starts.of(j.eid)) for j in behind),
        )
        assert not outcomes[0].ok and outcomes[0].error is not None
        assert outcomes[0].error["type"] == "daisi.WorkerCrashed"
        assert "exit code 3" in outcomes[0].error["message"]  # its own exit, not our kill
        for j, outcome in zip(behind, outcomes[1:], strict=True):
            assert value(outcome)[2] != old_pid  # ran on the replacement
            assert len(starts.at[j.eid]) == 1  # began once: the lost worker never began it


async def test_a_cancelled_job_that_has_not_begun_never_runs(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    marker = tmp_path / "ran.txt"
    starts = Starts()
    async with open_pool(folder) as pool:
        (pid,) = pool.pids
        running = asyncio.ensure_future(pool.run(job(tmp_path, "span", seconds=0.3)))
        withdrawn = job(tmp_path, "mark", path=str(marker))
        waiting = asyncio.ensure_future(pool.run(withdrawn, on_start=starts.of(withdrawn.eid)))
        await asyncio.sleep(0.05)  # both are with the worker
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert value(await running)[2] == pid  # the running job was not disturbed
        assert value(await pool.run(job(tmp_path, "span", seconds=0)))[2] == pid
        assert not marker.exists()
        assert withdrawn.eid not in starts.at
        assert pool.pids == [pid]  # no worker was killed


async def test_jobs_stuck_behind_a_long_one_move_to_an_idle_worker(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    async with open_pool(folder) as pool:  # one worker, the most it may have
        (busy_pid,) = pool.pids
        t0 = time.monotonic()
        long_run = asyncio.ensure_future(pool.run(job(tmp_path, "span", seconds=3)))
        stuck = asyncio.ensure_future(pool.run(job(tmp_path, "span", seconds=0)))
        await asyncio.sleep(0.05)  # the second job waits behind the first, on its worker
        await pool.resize(2, wait=True)  # a second worker: idle, it takes the stuck job back
        _, ended, pid = value(await stuck)
        assert pid != busy_pid
        assert ended - t0 < 2.5  # well before the long job ends
        assert value(await long_run)[2] == busy_pid


def test_a_room_stages_each_job_of_a_lane_apart(tmp_path: Path) -> None:
    blob = tmp_path / "blob.dill"
    blob.write_bytes(b"data")
    room = WorkerRoom(tmp_path / "room")

    def make(eid: str) -> Job:
        args = {"x": {"file": str(blob)}}
        return Job(eid, "f", args, timeout=1, result_path=str(tmp_path / f"r-{eid}"))

    first, second = make("e1"), make("e2")
    sent_first, sent_second = room.stage(first), room.stage(second)
    assert sent_first.args["x"] != sent_second.args["x"]
    room.clear(first)
    names = [p.name for p in (tmp_path / "room" / "in").iterdir()]
    assert names == [Path(sent_second.args["x"]["file"]).name]  # the second job's file stays
    room.clear(second)
    assert not list((tmp_path / "room" / "in").iterdir())


async def test_a_pool_that_may_grow_starts_a_worker_rather_than_queue_on_a_busy_one(
    tmp_path: Path,
) -> None:
    folder = make_daisi(tmp_path, APP)
    async with open_pool(folder, min_workers=1, max_workers=2) as pool:
        runs = await asyncio.gather(
            pool.run(job(tmp_path, "span", seconds=0.5)),
            pool.run(job(tmp_path, "span", seconds=0.5)),
        )
        first, second = (value(r) for r in runs)
        assert first[2] != second[2]  # two workers
        assert second[0] < first[1] and first[0] < second[1]  # at the same time


async def test_jobs_behind_one_over_its_time_limit_go_back_to_the_queue(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    async with open_pool(folder) as pool:
        (old_pid,) = pool.pids
        outcomes = await asyncio.gather(
            pool.run(job(tmp_path, "span", timeout=0.3, seconds=10)),
            pool.run(job(tmp_path, "span", seconds=0)),
            pool.run(job(tmp_path, "span", seconds=0)),
        )
        assert outcomes[0].error is not None
        assert outcomes[0].error["type"] == "daisi.TimeLimitExceeded"
        assert all(value(o)[2] != old_pid for o in outcomes[1:])


async def test_retiring_sends_back_the_jobs_queued_on_a_worker(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    marker = tmp_path / "ran.txt"
    async with open_pool(folder) as pool:
        running = asyncio.ensure_future(pool.run(job(tmp_path, "span", seconds=0.5)))
        queued = asyncio.ensure_future(pool.run(job(tmp_path, "mark", path=str(marker))))
        await asyncio.sleep(0.1)  # both are with the worker
        await pool.retire()
        assert value(await running)[1] > 0  # the running job finished
        with pytest.raises(PoolRetired):
            await queued
        assert not marker.exists()


async def test_jobs_wait_for_the_workers_that_are_starting(tmp_path: Path) -> None:
    # Only ready workers count: the first worker to be ready does not take the jobs the
    # others are starting for (they would have to be taken back from it).
    folder = make_daisi(tmp_path, APP)
    async with open_pool(folder, min_workers=0, max_workers=3) as pool:
        runs = asyncio.gather(*(pool.run(job(tmp_path, "span", seconds=1)) for _ in range(3)))
        while not pool._workers:  # until the first worker is ready
            await pool._wait_change()
        # (under load a second worker may be ready too by the time this task runs)
        assert {len(w.lane.entries) for w in pool._workers} == {1}
        spans = [value(r) for r in await runs]
        assert len({pid for _, _, pid in spans}) == 3
        assert max(began for began, _, _ in spans) < min(ended for _, ended, _ in spans)
