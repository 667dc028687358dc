"""A real Dask cluster for tests: ``dask scheduler`` and ``dask worker`` processes.

Each worker is a ``dask worker`` process of its own (a nanny and its worker process,
one thread), so that a test can kill one worker process (the nanny starts it again) or
the scheduler, and start the scheduler again on the same port.

Example:
    >>> with DaskCluster(workers=2) as cluster:  # doctest: +SKIP
    ...     print(cluster.address)  # tcp://127.0.0.1:41234
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import psutil
import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
DASK = str(Path(sys.executable).with_name("dask"))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DaskCluster:
    """A scheduler and ``workers`` worker processes on 127.0.0.1 (see the module doc)."""

    def __init__(self, workers: int = 2, *, startup_timeout: float = 90.0) -> None:
        self.n_workers = workers
        self.startup_timeout = startup_timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="dask-cluster-")
        self.dir = Path(self._tmp.name)
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
        }

    def _log(self, name: str) -> int:
        return os.open(self.dir / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def start_scheduler(self) -> None:
        """Start the scheduler on this cluster's port."""
        fd = self._log("scheduler")
        self.scheduler = subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-dashboard", "--no-show"],
            stdout=fd, stderr=fd, env=self.env, start_new_session=True,
        )  # fmt: skip
        os.close(fd)

    def start_workers(self) -> None:
        """Start the worker processes (each with its nanny)."""
        for i in range(self.n_workers):
            fd = self._log(f"worker{i}")
            self.workers.append(
                subprocess.Popen(
                    [
                        DASK,
                        "worker",
                        self.address,
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        "--no-dashboard",
                        "--name",
                        f"w{i}",
                        "--local-directory",
                        str(self.dir / f"w{i}"),
                        "--death-timeout",
                        "60",
                    ],
                    stdout=fd,
                    stderr=fd,
                    env=self.env,
                    start_new_session=True,
                )
            )
            os.close(fd)

    def wait_for_workers(self, n: int | None = None, timeout: float | None = None) -> list[str]:
        """Wait until the scheduler lists ``n`` workers (default: all); their addresses."""
        from distributed import Client

        n = self.n_workers if n is None else n
        deadline = time.monotonic() + (timeout or self.startup_timeout)
        while True:
            try:
                with Client(self.address, timeout=5) as client:
                    client.wait_for_workers(n, timeout=max(1.0, deadline - time.monotonic()))
                    return list(client.scheduler_info(n_workers=-1)["workers"])
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the Dask cluster did not start:\n{self.logs()}") from None
                time.sleep(0.2)

    def start(self) -> DaskCluster:
        """Start the scheduler and the workers and wait for them."""
        self.start_scheduler()
        self.start_workers()
        self.wait_for_workers()
        return self

    def kill_scheduler(self) -> None:
        """SIGKILL the scheduler (its workers then shut down by themselves)."""
        if self.scheduler is not None:
            os.killpg(self.scheduler.pid, signal.SIGKILL)
            self.scheduler.wait()
            self.scheduler = None

    def stop_workers(self) -> None:
        """Stop every worker process and its nanny."""
        for proc in self.workers:
            _stop(proc)
        self.workers = []

    def worker_pids(self) -> set[int]:
        """Pids of every process the ``dask worker`` commands started (nannies, workers)."""
        pids: set[int] = set()
        for proc in self.workers:
            try:
                top = psutil.Process(proc.pid)
                pids.add(top.pid)
                pids.update(p.pid for p in top.children(recursive=True))
            except psutil.Error:
                pass
        return pids

    def logs(self) -> str:
        """The last lines of every log."""
        out = []
        for path in sorted(self.dir.glob("*.log")):
            out.append(f"--- {path.name}\n" + "\n".join(path.read_text().splitlines()[-30:]))
        return "\n".join(out)

    def stop(self) -> None:
        """Stop everything."""
        self.stop_workers()
        if self.scheduler is not None:
            _stop(self.scheduler)
            self.scheduler = None
        self._tmp.cleanup()

    def __enter__(self) -> DaskCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    else:
        with contextlib.suppress(ProcessLookupError):  # a worker may linger in the group
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster() -> Iterator[DaskCluster]:
    """A scheduler and two ``dask worker`` processes, for one test module."""
    with DaskCluster(workers=2) as c:
        yield c
