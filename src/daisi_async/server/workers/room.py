"""A sandboxed worker's room (:class:`WorkerRoom`): its private folders, and how a job's
files get in and out.

A sandboxed worker sees neither the store nor its blob files, so each worker has a room
of its own in the store (``<store>/sandbox/w-XXXX/``), on the same file system as the
blobs, holding four folders that the sandbox mounts (:mod:`.sandbox`):

* ``in/`` at ``/run/daisi/in``, read-only: before a job, the server hard-links (copies,
  where it can't link) the job's argument blob files here, and the job names them by
  their path in the sandbox (:meth:`WorkerRoom.stage`). Read-only, so the worker can't
  change the stored blob through the link;
* ``out/`` at ``/run/daisi/out``: the worker writes a large result here; after the job
  the server moves it into the store (:meth:`WorkerRoom.collect`: a rename, so no
  copy), after checking that it is a regular file (not a link to something the
  server could read);
* ``tmp/`` at ``/tmp`` and ``/var/tmp``, ``home/`` at ``HOME`` (``/run/daisi/home``).

The frames between server and worker do not change: a job still names argument files
and a result path, only these are paths in the sandbox. The room goes when its worker
ends (:meth:`WorkerRoom.remove`); the server clears every room left over at startup.

Example:
    >>> room = WorkerRoom(Path(".daisi/sandbox/w-1"))  # doctest: +SKIP
    >>> sent = room.stage(job)  # doctest: +SKIP
    >>> outcome = room.collect(await lane.send(sent, ...).future, job)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import stat
from pathlib import Path
from typing import Any

from .jobs import Job, Outcome, error

__all__ = ["HOME_DIR", "IN_DIR", "OUT_DIR", "WorkerRoom"]

IN_DIR = "/run/daisi/in"
"""Where a sandboxed worker finds its job's argument files (read-only)."""
OUT_DIR = "/run/daisi/out"
"""Where a sandboxed worker writes a large result."""
HOME_DIR = "/run/daisi/home"
"""A sandboxed worker's ``HOME``."""


class WorkerRoom:
    """The private folders of one sandboxed worker (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.inbox = folder / "in"
        self.outbox = folder / "out"
        self._outbox = str(self.outbox)
        self.tmp = folder / "tmp"
        self.home = folder / "home"
        for path in (self.inbox, self.outbox, self.tmp, self.home):
            path.mkdir(parents=True, exist_ok=True)
        self._staged: dict[str, list[Path]] = {}  # by execution: a lane holds several

    def stage(self, job: Job) -> Job:
        """``job`` as the sandboxed worker sees it: its argument files linked into ``in/``
        and named by their path in the sandbox; its result path in ``out/``."""
        args: dict[str, dict[str, Any]] = {}
        for n, (name, spec) in enumerate(job.args.items()):
            if "file" not in spec:
                args[name] = spec
                continue
            source = Path(spec["file"])
            link = self.inbox / f"{job.eid}-{n}-{source.name}"
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            try:
                os.link(source, link)
            except OSError:  # another file system, or links refused: copy
                shutil.copyfile(source, link)
            self._staged.setdefault(job.eid, []).append(link)
            args[name] = {"file": f"{IN_DIR}/{link.name}"}
        result = f"{OUT_DIR}/{os.path.basename(job.result_path)}"
        # (not dataclasses.replace: this runs for every job, and replace costs 3x more)
        return Job(job.eid, job.endpoint, args, job.timeout, result, job.inline_limit)

    def collect(self, outcome: Outcome, job: Job) -> Outcome:
        """The outcome as the server sees it: a result file the worker wrote in ``out/``
        moved to ``job.result_path`` (the path the worker named is not trusted)."""
        if not outcome.ok or outcome.result_file is None:
            return outcome
        written = self.outbox / Path(job.result_path).name
        final = Path(job.result_path)
        try:
            if not stat.S_ISREG(os.lstat(written).st_mode):
                return _bad_result("the worker's result is not a regular file")
            os.replace(written, final)
            # Checked again where the worker can't reach: it might have swapped the file.
            info = os.lstat(final)
        except OSError as exc:
            return _bad_result(f"the worker's result file could not be moved: {exc}")
        if not stat.S_ISREG(info.st_mode):
            _remove(final)
            return _bad_result("the worker's result is not a regular file")
        return dataclasses.replace(outcome, result_file=str(final), result_size=info.st_size)

    def clear(self, job: Job, *, ended_well: bool = False) -> None:
        """Remove what :meth:`stage` linked and what the job may have left in ``out/``.

        ``ended_well``: the job's outcome was a success and :meth:`collect` took its
        result file, if any; the worker writes nothing else there, so there is nothing
        to look for (two system calls fewer per job)."""
        for link in self._staged.pop(job.eid, ()):
            with contextlib.suppress(OSError):
                link.unlink()
        if ended_well:
            return
        name = os.path.basename(job.result_path)
        for leftover in (name, name + ".tmp"):
            _remove(os.path.join(self._outbox, leftover))

    def remove(self) -> None:
        """Remove the room and everything in it (its worker has ended)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _remove(path: str | Path) -> None:
    """Remove a file, link or folder if there is one (one system call when there is none
    or it is a file: this runs after every job)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:  # a folder (EISDIR on Linux, EPERM elsewhere), or not ours to remove
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)


def _bad_result(message: str) -> Outcome:
    return Outcome(ok=False, error=error("daisi.ResultError", message))
