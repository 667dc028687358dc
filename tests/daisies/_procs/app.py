"""Procs: a Daisi that starts processes, for the containment tests.

tests/server/test_containment.py copies this file into Daisi folders of its own (the
leading ``_`` keeps this folder out of the runtime that serves tests/daisies). At import
it starts a helper process (allowed to live as long as its worker).

A process is named ``[namespace, pid]``: the inode of its PID namespace and its pid
there. In the sandbox a worker has a PID namespace of its own, whose pids mean nothing
outside; the tests find the host's pid from the pair (``NSpid`` in ``/proc/<pid>/status``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

NAMESPACE = os.stat("/proc/self/ns/pid").st_ino

# Allocates and touches argv[1] MiB, then sleeps argv[2] seconds.
HOG = """
import sys, time
block = b"\\x01" * (int(sys.argv[1]) * 2**20)
time.sleep(float(sys.argv[2]))
"""

_helper = subprocess.Popen(["sleep", "300"])


def helper() -> list[int]:
    """``[namespace, pid]`` of this worker's import-time helper process."""
    return [NAMESPACE, _helper.pid]


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


def spawn(then: str = "return", seconds: float = 0.0) -> list[list[int]]:
    """Start a child, a child in its own session and a double-forked daemon.

    Prints ``pids: [[namespace, pid], ...]`` (child, loner, daemon), then: ``return``
    them, ``raise``, ``sleep`` ``seconds`` and return, or ``exit`` the worker hard after
    ``seconds``.
    """
    child = subprocess.Popen(["sleep", "300"])
    loner = subprocess.Popen(["sleep", "300"], start_new_session=True)
    pids = [[NAMESPACE, pid] for pid in (child.pid, loner.pid, _daemon())]
    print("pids: " + json.dumps(pids), flush=True)
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
