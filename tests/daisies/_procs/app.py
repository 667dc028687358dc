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

# A double-forked daemon in a session of its own: it writes its pid to argv[1].
DAEMON = """
import os, sys, time
if os.fork():
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(300)
"""

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


def _wait_for_file(path: Path, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear")
        time.sleep(0.005)
    return path.read_text()


def spawn(pidfile: str, then: str = "return", seconds: float = 0.0) -> list[int]:
    """Start a child, a child in its own session and a double-forked daemon.

    Their pids go to ``pidfile`` (as ``[child, loner, daemon]``, one per line), then:
    ``return`` them, ``raise``, ``sleep`` ``seconds`` and return, or ``exit`` the worker
    hard after ``seconds``.
    """
    child = subprocess.Popen(["sleep", "300"])
    loner = subprocess.Popen(["sleep", "300"], start_new_session=True)
    daemon_file = Path(pidfile + ".daemon")
    subprocess.run([sys.executable, "-c", DAEMON, str(daemon_file)], check=True)
    pids = [child.pid, loner.pid, int(_wait_for_file(daemon_file))]
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
