"""The worker's main loop: import the Daisi, report, then run executions one at a time.

See the package docstring (:mod:`daisi_async.server.workers.program`) for the protocol.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import socket
import sys
import threading
import time
import types
from typing import Any

from daisi_async.server.workers import proctree

from .calling import ArgumentFailure, call, open_arguments
from .capture import IMPORTING, LineWriter, configure_logging
from .channel import Channel, exit_now
from .failures import error, format_exception, qualified_type, safe_str
from .inbox import Inbox
from .loading import load_entry
from .results import DEFAULT_INLINE_LIMIT, SiblingModules, result_frame

__all__ = ["PARENT_POLL", "main"]

PARENT_POLL = 0.1
"""Seconds between two checks that the server is alive, where pidfds are missing."""


def _failure(exc: BaseException) -> dict[str, str]:
    """The error of an exception the Daisi raised (at import or in a call)."""
    return error(qualified_type(exc), safe_str(exc), format_exception(exc))


class _Worker:
    """The loop of a worker whose Daisi imported: its jobs one at a time, in the order
    their ``run`` frames came (see the package docstring)."""

    def __init__(
        self,
        channel: Channel,
        module: types.ModuleType,
        out: LineWriter,
        err: LineWriter,
        siblings: SiblingModules,
    ) -> None:
        self.channel = channel
        self.module = module
        self.out = out
        self.err = err
        self.siblings = siblings
        self.inbox = Inbox(channel)
        self.resident: frozenset[tuple[int, int]] = frozenset()
        """Processes started at import time: they live as long as the worker."""
        if proctree.has_children():
            self.resident = frozenset(p.key for p in proctree.descendants(os.getpid()))

    def end_processes(self) -> None:
        """Kill and reap the processes the execution started (a syscall if there are none)."""
        if proctree.has_children():
            proctree.kill_tree(os.getpid(), include_root=False, keep=self.resident, reap=True)

    def run(self, header: dict[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
        """Run one execution: its ``done`` frame, to send."""
        eid = str(header.get("eid", ""))
        endpoint = str(header.get("endpoint", ""))
        args = header.get("args") or {}
        inline_limit = int(header.get("inline_limit", DEFAULT_INLINE_LIMIT))
        result_path = header.get("result_path")
        failed: dict[str, str] | None = None
        result: Any = None
        self.out.begin(eid)
        self.err.begin(eid)
        sys.stdout, sys.stderr = self.out, self.err
        try:
            try:
                values = open_arguments(args, body)
                result = call(self.module, endpoint, values)
            except ArgumentFailure as failure:
                failed = failure.error
            except BaseException as exc:
                failed = _failure(exc)
        finally:
            sys.stdout, sys.stderr = self.out, self.err
            self.out.end()
            self.err.end()
        if failed is not None:
            del result
            reply: dict[str, Any] = {"op": "done", "eid": eid, "ok": False, "error": failed}
            data = b""
        else:
            reply, data = result_frame(
                eid,
                result,
                inline_limit=inline_limit,
                result_path=result_path if isinstance(result_path, str) else None,
                siblings=self.siblings,
            )
            del result
        self.end_processes()
        return reply, data

    def serve(self) -> None:
        """Run the jobs in the order they came, until ``exit`` or the end of the stream.

        Each ``done`` frame names the job that begins next (``next``), taken from the
        inbox before the frame is sent. A job the server sent while others were
        running (``"queued": true``) that no ``done`` frame named is announced by a
        ``begin`` frame; a job sent to an idle worker begins when it arrives."""
        self.inbox.watch()
        job = self.inbox.next(wait=True)
        announced = None
        while job is not None:
            header, body = job
            eid = header.get("eid")
            if header.get("queued") and eid != announced:
                self.channel.send({"op": "begin", "eid": eid})
            self.inbox.running()
            reply, data = self.run(header, body)
            self.inbox.ended()
            job = self.inbox.next(wait=False)
            announced = reply["next"] = None if job is None else job[0].get("eid")
            self.channel.send(reply, data)
            if job is None:
                job = self.inbox.next(wait=True)


def _die_with_parent() -> None:
    """Kill everything below the worker and exit when the server dies, even by SIGKILL
    and in the middle of a silent job.

    A daemon thread waits on a pidfd of the server (Linux 5.3+), which becomes
    readable the moment the server exits; elsewhere it polls the parent pid every
    ``PARENT_POLL`` seconds. The thread needs the GIL: a C extension that holds it
    delays the cleanup until it lets go. (A parent-death signal would not: but
    SIGKILL would orphan the Daisi's processes, and any other signal is handled
    in the main thread only.)
    """
    parent = os.getppid()
    pidfd: int | None = None
    with contextlib.suppress(AttributeError, OSError):
        pidfd = os.pidfd_open(parent)
    if os.getppid() != parent:  # the server died before the watch began
        exit_now(0)

    def watch() -> None:
        if pidfd is not None:
            with contextlib.suppress(OSError):
                poller = select.poll()
                poller.register(pidfd, select.POLLIN)
                poller.poll()  # readable once the server has exited
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        exit_now(0)

    threading.Thread(target=watch, name="daisi-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    """Run the worker; see the module docstring."""
    # ``python -m`` put the launching directory first on sys.path: not the Daisi's business.
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    parser = argparse.ArgumentParser(prog="daisi-worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--entry", required=True)
    ns = parser.parse_args(argv)
    proctree.become_subreaper()
    _die_with_parent()

    os.set_inheritable(ns.fd, False)  # the Daisi's subprocesses must not hold the socket
    channel = Channel(socket.socket(fileno=ns.fd))
    directory = os.path.abspath(ns.dir)
    os.chdir(directory)
    # The entry's own folder first (``import sibling``, as when Python runs a script),
    # then the Daisi's folder (``from sub_folder.module import x``).
    entry_dir = os.path.dirname(os.path.join(directory, ns.entry))
    sys.path[0:0] = [entry_dir, directory] if entry_dir != directory else [directory]
    sys.argv = [os.path.join(directory, ns.entry)]

    out = LineWriter(channel, "stdout", sys.stdout)
    err = LineWriter(channel, "stderr", sys.stderr)
    sys.stdout, sys.stderr = out, err
    configure_logging()

    original_main = sys.modules.get("__main__")
    out.begin(IMPORTING)
    err.begin(IMPORTING)
    try:
        module = load_entry(directory, ns.entry)
    except BaseException as exc:
        sys.stdout, sys.stderr = out, err
        out.end()
        err.end()
        channel.send({"op": "import_error", "error": _failure(exc)})
        exit_now(0)
    sys.stdout, sys.stderr = out, err
    out.end()
    err.end()
    worker = _Worker(channel, module, out, err, SiblingModules(directory))
    channel.send({"op": "ready", "pid": os.getpid()})
    worker.serve()
    del original_main
    exit_now(0)
