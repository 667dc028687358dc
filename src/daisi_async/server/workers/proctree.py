"""Process trees on Linux: list, measure and kill a process and all its descendants.

The runtime uses it on both sides of a worker: the pool measures a worker's tree
(:func:`tree_rss`) and kills it (:func:`kill_tree`); the worker, a child subreaper
(:func:`become_subreaper`), kills what an execution started and reaps it.

Everything comes from one scan of ``/proc/*/stat`` (:func:`scan`): the kernel's
``/proc/<pid>/task/<tid>/children`` needs ``CONFIG_PROC_CHILDREN``, which common
kernels lack, so the tree is rebuilt from every process's parent pid. A scan costs
about 10 µs per process on the machine (``0.7 ms`` with 70 processes); callers that
check often share one scan (see :mod:`daisi_async.server.workers.limits`).

A process is named by ``(pid, start time)`` (:attr:`Proc.key`) so that a recycled pid
is never mistaken for a process seen earlier.

Example:
    >>> table = scan()
    >>> tree_rss(os.getpid(), table) > 0
    True
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Collection, Iterable
from typing import NamedTuple

__all__ = [
    "Proc",
    "Table",
    "become_subreaper",
    "descendants",
    "has_children",
    "kill_known",
    "kill_tree",
    "read_proc",
    "scan",
    "tree_rss",
]

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

_PR_SET_CHILD_SUBREAPER = 36
_STOPPED = frozenset("TtZXx")  # stopped, traced, or dead: cannot fork any more
_DEAD = frozenset("ZXx")
_WALL = 0x40000000  # __WALL: children of any exit signal, in waitid's options


class Proc(NamedTuple):
    """One process, as ``/proc/<pid>/stat`` shows it."""

    pid: int
    ppid: int
    state: str
    """One letter: ``R`` running, ``S`` sleeping, ``T`` stopped, ``Z`` zombie, ..."""
    start: int
    """Start time in clock ticks after boot: with the pid, names the process for good."""
    rss: int
    """Resident memory, in pages."""

    @property
    def key(self) -> tuple[int, int]:
        """``(pid, start)``."""
        return (self.pid, self.start)


Table = dict[int, Proc]
"""Every process of one scan, by pid."""


def _parse(pid: int, data: bytes) -> Proc | None:
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    fields = data[data.rfind(b")") + 2 :].split(None, 22)
    try:
        return Proc(pid, int(fields[1]), fields[0].decode(), int(fields[19]), int(fields[21]))
    except (IndexError, ValueError):
        return None


def read_proc(pid: int) -> Proc | None:
    """The process ``pid``, or None if there is none."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    return _parse(pid, data)


def scan() -> Table:
    """Every process on the machine (one read of each ``/proc/<pid>/stat``)."""
    table: Table = {}
    try:
        names = os.listdir("/proc")
    except OSError:  # no procfs (not Linux): no tree to see
        return table
    for name in names:
        if not name.isdigit():
            continue
        try:
            fd = os.open(f"/proc/{name}/stat", os.O_RDONLY)
        except OSError:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:
            continue
        finally:
            os.close(fd)
        fields = data[data.rfind(b")") + 2 :].split(None, 22)
        try:
            pid = int(name)
            table[pid] = Proc(
                pid, int(fields[1]), fields[0].decode(), int(fields[19]), int(fields[21])
            )
        except (IndexError, ValueError):
            continue
    return table


def descendants(pid: int, table: Table | None = None) -> list[Proc]:
    """The processes below ``pid`` (zombies included), parents before their children."""
    if table is None:
        table = scan()
    children: dict[int, list[Proc]] = {}
    for proc in table.values():
        if proc.pid != proc.ppid:
            children.setdefault(proc.ppid, []).append(proc)
    found: list[Proc] = []
    todo = [pid]
    seen = {pid}
    while todo:
        for child in children.get(todo.pop(), ()):
            if child.pid not in seen:
                seen.add(child.pid)
                found.append(child)
                todo.append(child.pid)
    return found


def tree_rss(pid: int, table: Table | None = None) -> int:
    """Resident memory of ``pid`` and all its descendants, in bytes (0 if ``pid`` is gone).

    Pages shared between processes (after a fork, say) count once per process, so
    this can exceed the memory the tree really holds.
    """
    if table is None:
        table = scan()
    root = table.get(pid)
    if root is None:
        return 0
    pages = root.rss + sum(p.rss for p in descendants(pid, table))
    return pages * PAGE_SIZE


def has_children() -> bool:
    """Whether the calling process has any child process (zombies included); one syscall.

    In a subreaper (:func:`become_subreaper`) this says whether it has any descendant
    at all: an orphan is re-parented to it, so every descendant's chain of parents
    ends with one of its children.
    """
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT | _WALL)
    except ChildProcessError:
        return False
    except OSError:  # an unknown option (old kernels): assume there may be some
        return True
    return True


def become_subreaper() -> bool:
    """Make the calling process a child subreaper (Linux ``PR_SET_CHILD_SUBREAPER``).

    Orphans among its descendants (a daemon that double-forked, a child whose parent
    died) are then re-parented to it instead of init, so they stay in its tree; it
    must reap them. Returns False where that is not supported.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _is_same(proc: Proc | None, start: int) -> bool:
    return proc is not None and proc.start == start


def _wait_stopped(procs: dict[int, int], deadline: float) -> None:
    """Wait until each process of ``{pid: start}`` is stopped, dead or gone."""
    pending = dict(procs)
    while pending:
        for pid, start in list(pending.items()):
            proc = read_proc(pid)
            if not _is_same(proc, start) or (proc is not None and proc.state in _STOPPED):
                del pending[pid]
        if not pending or time.monotonic() >= deadline:
            return
        time.sleep(0.0005)


def _reap(procs: dict[int, int], deadline: float) -> None:
    """Wait until each process of ``{pid: start}`` is gone, reaping our own children.

    A zombie whose parent is not this process (nor one of ``procs``, whose death hands
    it over to us) is left to that parent.
    """
    me = os.getpid()
    pending = dict(procs)

    def settled(pid: int, start: int) -> bool:
        proc = read_proc(pid)
        if proc is not None and proc.start == start and proc.ppid == me:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
            proc = read_proc(pid)
        if proc is None or proc.start != start:
            return True  # reaped
        return proc.state in _DEAD and proc.ppid != me and proc.ppid not in pending

    while pending:
        for pid, start in list(pending.items()):
            if settled(pid, start):
                del pending[pid]
        if not pending or time.monotonic() >= deadline:
            return
        time.sleep(0.001)


def kill_tree(
    pid: int,
    *,
    include_root: bool = True,
    keep: Collection[tuple[int, int]] = (),
    reap: bool = False,
    timeout: float = 1.0,
) -> list[int]:
    """SIGKILL the descendants of ``pid`` (and ``pid`` itself, last, if ``include_root``).

    To beat fork races, the tree is frozen first: ``pid`` and every descendant get
    SIGSTOP, and the tree is scanned again until a scan taken after they all stopped
    finds no new process; then each gets SIGKILL. Killing descendants before the root
    matters: once the root is gone, its orphans would be re-parented out of reach.

    ``keep`` names processes (:attr:`Proc.key`) to spare; their new children are not
    spared. With ``reap`` (for the caller's own tree), wait until the killed
    processes are gone and reap those that are the caller's children. ``timeout``
    bounds the freezing and the reaping. Returns the pids that were killed (the root
    included).
    """
    deadline = time.monotonic() + timeout
    frozen: dict[int, int] = {}
    dead: dict[int, int] = {}
    root = read_proc(pid) if include_root else None
    if root is not None:
        _signal(pid, signal.SIGSTOP)
    while True:
        _wait_stopped(
            {**frozen, **({pid: root.start} if root is not None else {})},
            deadline,
        )
        fresh: list[Proc] = []
        for p in descendants(pid, scan()):
            if p.key in keep:
                continue
            if p.state in _DEAD:
                dead[p.pid] = p.start
            elif frozen.get(p.pid) != p.start:
                fresh.append(p)
        for p in fresh:
            _signal(p.pid, signal.SIGSTOP)
            frozen[p.pid] = p.start
        if not fresh or time.monotonic() >= deadline:
            break
    for victim in frozen:
        _signal(victim, signal.SIGKILL)
    killed = list(frozen)
    if root is not None and _is_same(read_proc(pid), root.start):
        _signal(pid, signal.SIGKILL)
        killed.append(pid)
    if reap:
        _reap({**dead, **frozen}, time.monotonic() + timeout)
    return killed


def kill_known(procs: Iterable[tuple[int, int]]) -> None:
    """SIGKILL the trees of the processes named by ``(pid, start)`` that still exist."""
    for pid, start in procs:
        if _is_same(read_proc(pid), start):
            kill_tree(pid, timeout=0.2)
