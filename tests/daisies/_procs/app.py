"""Procs: a Daisi that starts processes, for the containment tests.

tests/server/test_containment.py copies this file into Daisi folders of its own (the
leading ``_`` keeps this folder out of the runtime that serves tests/daisies). At import
it starts a helper process (allowed to live as long as its worker) and appends the
helper's pid to ``helpers.txt`` in the Daisi's folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Allocates and touches argv[1] MiB, then sleeps argv[2] seconds.
HOG = """
import sys, time
block = b"\\x01" * (int(sys.argv[1]) * 2**20)
time.sleep(float(sys.argv[2]))
"""

_helper = subprocess.Popen(["sleep", "300"])
with open(HERE / "helpers.txt", "a") as _f:
    _f.write(f"{_helper.pid}\n")


def helper() -> int:
    """The pid of this worker's import-time helper process."""
    return _helper.pid


def _daemon() -> int:
    """Double-fork ``sleep 300`` into a session of its own, as daemons do; its pid."""
    read_end, write_end = os.pipe()
    first = os.fork()
    if first == 0:  # the intermediate child: new session, fork again, leave
        try:
            os.close(read_end)
            os.setsid()
            grandchild = os.fork()
            if grandchild == 0:
                os.execvp("sleep", ["sleep", "300"])
            os.write(write_end, str(grandchild).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        text = f.read()
    os.waitpid(first, 0)
    return int(text)


def spawn(pidfile: str, then: str = "return", seconds: float = 0.0) -> list[int]:
    """Start a child, a child in its own session and a double-forked daemon.

    Their pids go to ``pidfile`` (as ``[child, loner, daemon]``, one per line), then:
    ``return`` them, ``raise``, ``sleep`` ``seconds`` and return, or ``exit`` the worker
    hard after ``seconds``.
    """
    child = subprocess.Popen(["sleep", "300"])
    loner = subprocess.Popen(["sleep", "300"], start_new_session=True)
    pids = [child.pid, loner.pid, _daemon()]
    tmp = Path(pidfile + ".tmp")
    tmp.write_text("\n".join(map(str, pids)) + "\n")
    os.replace(tmp, pidfile)
    if then == "raise":
        raise RuntimeError("failing with children running")
    if then in ("sleep", "exit"):
        time.sleep(seconds)
    if then == "exit":
        os._exit(3)
    return pids


def child_leak(megabytes: int = 600, seconds: float = 3.0) -> int:
    """A subprocess allocates ``megabytes`` MiB and holds them ``seconds`` seconds."""
    proc = subprocess.Popen([sys.executable, "-c", HOG, str(megabytes), str(seconds)])
    return proc.wait()


def fork_leak(megabytes: int = 600, seconds: float = 3.0) -> int:
    """A forked child allocates ``megabytes`` MiB and holds them ``seconds`` seconds."""
    pid = os.fork()
    if pid == 0:
        try:
            block = b"\x01" * (megabytes * 2**20)
            time.sleep(seconds)
            del block
        finally:
            os._exit(0)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def environment() -> dict[str, str]:
    """The worker's environment variables."""
    return dict(os.environ)
