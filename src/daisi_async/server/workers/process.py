"""One worker process: its command line (:func:`worker_command`), starting it
(:func:`launch`, :func:`wait_ready`), killing it and reaping it (:class:`WorkerProcess`).

Each worker runs in its own session (process group), with the environment it is
given, and in a sandbox when the pool has one (:mod:`.sandbox`: the process the
server sees is then ``bwrap``, with the worker inside; the worker's room, its private
folders, is :attr:`WorkerProcess.room`). Worker stdout (fd 1) goes to ``/dev/null``;
worker stderr (fd 2) is the server's stderr, so a worker that dies hard leaves its last
words in the server's log.

Example:
    >>> worker = await launch(sys.executable, directory=Path("daisies/adder"),
    ...                       entry="app.py", env=os.environ)  # doctest: +SKIP
    >>> await wait_ready(worker)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import daisi_async

from .._frames import FrameError, encode_head, read_frame_async
from . import proctree
from .jobs import DaisiImportError, clean_error, describe_exit, error

if TYPE_CHECKING:
    from .lane import Lane
    from .room import WorkerRoom
    from .sandbox import Sandbox

__all__ = [
    "EXIT_GRACE",
    "WORKER_MODULE",
    "WorkerProcess",
    "kill_worker_tree",
    "launch",
    "package_root",
    "wait_ready",
    "worker_command",
]

EXIT_GRACE = 2.0
"""Seconds a worker is given to exit when asked, before it is killed."""

WORKER_MODULE = "daisi_async.server.workers.program"
"""The worker program (:mod:`daisi_async.server.workers.program`), run with ``python -m``."""


def package_root() -> str:
    """The directory that holds the ``daisi_async`` package (for the workers' PYTHONPATH)."""
    return str(Path(daisi_async.__file__).resolve().parent.parent)


def worker_command(
    python: str,
    *,
    fd: int,
    directory: Path,
    entry: str,
    sandbox: Sandbox | None = None,
    room: WorkerRoom | None = None,
) -> list[str]:
    """The command line of a worker: ``python -m <program> --fd N --dir D --entry E``,
    inside ``sandbox`` (with ``room`` as its private folders) when one is given.

    ``fd`` is the worker's end of its socket (inherited); ``entry`` is relative to
    ``directory``.

    Example:
        >>> worker_command("/usr/bin/python3", fd=5, directory=Path("/d"), entry="app.py")
        ['/usr/bin/python3', '-m', 'daisi_async.server.workers.program', '--fd', '5', '--dir', '/d', '--entry', 'app.py']
    """  # noqa: E501
    inner = [python, "-m", WORKER_MODULE, "--fd", str(fd), "--dir", str(directory)]
    inner += ["--entry", entry]
    if sandbox is None:
        return inner
    return sandbox.command(inner, python=python, directory=directory, room=room)


def kill_worker_tree(pid: int) -> None:
    """SIGKILL a worker, everything below it, and its process group."""
    proctree.kill_tree(pid, timeout=0.5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class WorkerProcess:
    """One worker process and its socket."""

    lane: Lane
    """Its jobs and the task reading its frames (:mod:`.lane`), given by the pool once the
    worker is ready."""

    __slots__ = (
        "busy",
        "deadline",
        "gone",
        "idle_timer",
        "kill_reason",
        "known",
        "lane",
        "peak_rss",
        "pid",
        "proc",
        "reader",
        "room",
        "watchdog",
        "writer",
    )

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        room: WorkerRoom | None = None,
    ) -> None:
        self.proc = proc
        self.room = room
        """The sandboxed worker's private folders (None: not sandboxed)."""
        self.pid = proc.pid
        self.reader = reader
        self.writer = writer
        self.busy = False
        self.gone = False  # killed, retired or dead: never given another job
        self.idle_timer: asyncio.TimerHandle | None = None  # stops it once idle too long
        self.kill_reason: str | None = None  # "time", "memory", "close", "cancel", "protocol"
        self.watchdog: asyncio.TimerHandle | None = None  # time and memory limits of the job
        self.deadline = math.inf
        self.peak_rss = 0
        self.known: frozenset[tuple[int, int]] = frozenset()  # processes last seen below it

    def kill(self, reason: str | None = None) -> None:
        """SIGKILL the worker's process tree and close the socket."""
        if reason is not None and self.kill_reason is None and not self.gone:
            self.kill_reason = reason
        self.gone = True
        if self.proc.returncode is None:
            kill_worker_tree(self.pid)
        self.stop_watchdog()
        self.stop_idle_timer()
        self.writer.close()

    def sweep(self) -> None:
        """After the worker exited: kill what it may have left to init."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.known:
            proctree.kill_known(self.known)
            self.known = frozenset()

    def stop_idle_timer(self) -> None:
        """Cancel the idle timer (the worker got a job, or leaves)."""
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    def stop_watchdog(self) -> None:
        """Cancel the job's time and memory checks."""
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None

    def ask_exit(self) -> None:
        """Ask the worker to leave its loop and exit."""
        self.gone = True
        self.stop_idle_timer()
        if not self.writer.is_closing():
            with contextlib.suppress(Exception):
                self.writer.write(encode_head({"op": "exit"}))
            self.writer.close()

    async def finish(self, grace: float) -> int:
        """Wait up to ``grace`` seconds for the process to exit, then kill it; reap it."""
        if self.proc.returncode is None and grace > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.proc.wait()), grace)
        if self.proc.returncode is None:
            self.kill()
        return self.exit_status(await self.proc.wait())

    def exit_status(self, returncode: int) -> int:
        """The worker's exit status as Python reports a child's (negative: killed by that
        signal). ``bwrap`` exits with ``128 + N`` when the worker inside died of signal
        ``N``: that is read as the signal."""
        if self.room is not None and 128 < returncode <= 128 + 64:
            return 128 - returncode
        return returncode

    def release_room(self) -> None:
        """Remove the sandboxed worker's room (once its process is reaped)."""
        if self.room is not None:
            self.room.remove()


async def launch(
    python: str,
    *,
    directory: Path,
    entry: str,
    env: Mapping[str, str],
    sandbox: Sandbox | None = None,
) -> WorkerProcess:
    """Start a worker process for the Daisi in ``directory`` (not yet ready: see
    :func:`wait_ready`), inside ``sandbox`` when one is given (it gets a room of its own)."""
    room = sandbox.open_room() if sandbox is not None else None
    parent, child = socket.socketpair()
    try:
        command = worker_command(
            python, fd=child.fileno(), directory=directory, entry=entry, sandbox=sandbox, room=room
        )
        proc = await asyncio.create_subprocess_exec(
            *command,
            pass_fds=[child.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=None,
            cwd=str(directory),
            env=dict(env),
            start_new_session=True,
        )
    except BaseException:
        parent.close()
        if room is not None:
            room.remove()
        raise
    finally:
        child.close()
    try:
        reader, writer = await asyncio.open_connection(sock=parent)
    except BaseException:
        parent.close()
        kill_worker_tree(proc.pid)
        raise
    return WorkerProcess(proc, reader, writer, room)


async def wait_ready(
    worker: WorkerProcess,
    *,
    on_output: Callable[[str, str], None] | None = None,
    timeout: float | None = None,
) -> None:
    """Wait for the worker's ``ready`` report; what the import prints goes to
    ``on_output(stream, line)`` meanwhile.

    Raises:
        DaisiImportError: the Daisi's module failed to import, took longer than
            ``timeout`` seconds (type ``daisi.ImportTimeout``), or the worker died
            first. The worker has then exited and is reaped.
    """
    try:
        frame = await asyncio.wait_for(_read_until_ready(worker, on_output), timeout)
    except asyncio.TimeoutError:  # (before OSError: TimeoutError is one)
        worker.kill()
        await worker.finish(0)
        assert timeout is not None
        raise DaisiImportError(
            error(
                "daisi.ImportTimeout",
                f"the Daisi's module did not finish importing within the import time limit"
                f" of {timeout:g} s (daisi serve --import-timeout, or import_timeout in"
                " daisi.toml); the worker was stopped",
            )
        ) from None
    except (FrameError, OSError):
        frame = None
    except BaseException:
        worker.kill()
        raise
    if frame is not None and frame.get("op") == "ready":
        return
    if frame is not None and frame.get("op") == "import_error":
        worker.gone = True
        await worker.finish(EXIT_GRACE)
        raise DaisiImportError(clean_error(frame.get("error")))
    worker.gone = True
    returncode = await worker.finish(1.0)
    raise DaisiImportError(
        error(
            "daisi.WorkerCrashed",
            f"the worker process died while importing the Daisi ({describe_exit(returncode)})",
        )
    )


async def _read_until_ready(
    worker: WorkerProcess, on_output: Callable[[str, str], None] | None
) -> dict[str, Any] | None:
    """The first frame that is not a ``log`` line of the import (None at the end)."""
    while True:
        frame = await read_frame_async(worker.reader)
        if frame is None or frame[0].get("op") != "log":
            return None if frame is None else frame[0]
        if on_output is not None:
            header = frame[0]
            on_output(str(header.get("stream", "stdout")), str(header.get("line", "")))
