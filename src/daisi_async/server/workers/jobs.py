"""One execution on a worker: what to run (:class:`Job`) and its ``run`` frame
(:func:`run_frame`), how it ended (:class:`Outcome`: :func:`outcome_of` its ``done``
frame, or :func:`lost` with its worker). The frames are sent and read by the worker's
lane (:mod:`.lane`).

Errors are ``{"type", "message", "traceback"}``; types starting with ``daisi.`` come
from the runtime, the others name the exception the Daisi raised.

Example:
    >>> job = Job("e1", "compute", {"x": {"json": 1}}, timeout=30, result_path="/tmp/e1.dill")
    >>> head, bodies = run_frame(job)
    >>> head[8:].startswith(b'{"op":"run","eid":"e1"')
    True
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._frames import encode_head

if TYPE_CHECKING:
    from .process import WorkerProcess

__all__ = [
    "DaisiImportError",
    "Job",
    "Outcome",
    "clean_error",
    "describe_exit",
    "error",
    "error_text",
    "format_bytes",
    "lost",
    "outcome_of",
    "run_frame",
]


@dataclass
class Job:
    """One execution to run on a worker.

    ``args`` maps each argument name to one of ``{"json": value}`` (a JSON
    value), ``{"file": "/abs/path"}`` (dill bytes in a file) or
    ``{"bytes": b"..."}`` (dill bytes in memory; sent within the frame body).
    """

    eid: str
    endpoint: str
    args: dict[str, dict[str, Any]]
    timeout: float
    """Time limit of this execution, in seconds."""
    result_path: str
    """Where the worker writes the dill bytes of a result larger than ``inline_limit``."""
    inline_limit: int = 65536
    """Results up to this many dill bytes come back in memory (:attr:`Outcome.result`)."""


@dataclass
class Outcome:
    """How an execution ended.

    On success exactly one of ``result`` (small dill bytes) and ``result_file``
    (a file holding the dill bytes) is set; ``result_json`` also holds the JSON
    text of the result when the result is a plain JSON value that fits within
    the job's ``inline_limit``. On failure ``error`` is ``{"type", "message",
    "traceback"}``; types starting with ``daisi.`` come from the runtime
    (``daisi.ArgumentError``, ``daisi.ResultError``, ``daisi.TimeLimitExceeded``,
    ``daisi.MemoryLimitExceeded``, ``daisi.WorkerCrashed``,
    ``daisi.WorkerStopped``), the others name the exception the Daisi raised
    (``builtins.ZeroDivisionError``).
    """

    ok: bool
    result: bytes | None = None
    result_file: str | None = None
    result_size: int = 0
    result_json: str | None = None
    error: dict[str, str] | None = None


class DaisiImportError(Exception):
    """The Daisi's module could not be imported by a worker.

    ``error`` is ``{"type", "message", "traceback"}``, as reported by the worker.
    """

    def __init__(self, error: dict[str, str]) -> None:
        self.error = error
        super().__init__(f"{error.get('type', 'Error')}: {error.get('message', '')}")


def error(kind: str, message: str, tb: str = "") -> dict[str, str]:
    """An error dict."""
    return {"type": kind, "message": message, "traceback": tb}


def clean_error(raw: object) -> dict[str, str]:
    """The error dict of a worker frame, with every field a string."""
    if not isinstance(raw, dict):
        return error("daisi.WorkerCrashed", "the worker reported a malformed error")
    return {key: str(raw.get(key, "")) for key in ("type", "message", "traceback")}


def describe_exit(returncode: int | None) -> str:
    """``exit code 3``, ``killed by signal SIGSEGV``, ..."""
    if returncode is None:
        return "exit status unknown"
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def format_bytes(n: int) -> str:
    """``8 GiB``, ``300 MiB``, ``512 bytes``."""
    if n % 2**30 == 0:
        return f"{n // 2**30} GiB"
    if n >= 2**20:
        return f"{n / 2**20:.0f} MiB"
    return f"{n} bytes"


def error_text(error: Mapping[str, str] | None) -> str:
    """A failure as one readable text: the traceback, else ``type: message``."""
    if not error:
        return ""
    tb = error.get("traceback") or ""
    headline = f"{error.get('type', 'Error')}: {error.get('message', '')}"
    if not tb.strip():
        return headline
    if str(error.get("type", "")).startswith("daisi.") and error.get("message", "") not in tb:
        # A runtime failure wrapping another one (e.g. an upstream execution's
        # traceback): keep the traceback and say what happened here, as Python
        # shows a chained exception.
        return (
            f"{tb.rstrip()}\n\nThe above exception was the direct cause of the following"
            f" exception:\n\n{headline}\n"
        )
    return tb


def run_frame(job: Job, *, queued: bool = False) -> tuple[bytes, list[bytes]]:
    """The head of the ``run`` frame of ``job`` and the argument bytes of its body;
    ``queued``: sent while the worker has other jobs (see :mod:`.lane`)."""
    args: dict[str, Any] = {}
    bodies: list[bytes] = []
    offset = 0
    for arg_name, spec in job.args.items():
        if "bytes" in spec:
            data = spec["bytes"]
            args[arg_name] = {"body": [offset, len(data)]}
            bodies.append(data)
            offset += len(data)
        else:
            args[arg_name] = spec
    header = {
        "op": "run",
        "eid": job.eid,
        "endpoint": job.endpoint,
        "args": args,
        "result_path": job.result_path,
        "inline_limit": job.inline_limit,
    }
    if queued:
        header["queued"] = True
    return encode_head(header, offset), bodies


def outcome_of(header: dict[str, Any], body: bytes) -> Outcome:
    """The :class:`Outcome` a ``done`` frame reports."""
    if not header.get("ok"):
        return Outcome(ok=False, error=clean_error(header.get("error")))
    file = header.get("file")
    json_text = header.get("json")
    return Outcome(
        ok=True,
        result=None if file else body,
        result_file=str(file) if file else None,
        result_size=int(header.get("size", len(body))),
        result_json=json_text if isinstance(json_text, str) else None,
    )


async def lost(worker: WorkerProcess, job: Job, memory_limit: int | None) -> Outcome:
    """The worker's stream ended during ``job``: say why."""
    reason = worker.kill_reason
    if reason is None:
        worker.gone = True
        returncode = await worker.finish(1.0)
        worker.sweep()  # before the crash is reported
        return Outcome(
            ok=False,
            error=error(
                "daisi.WorkerCrashed",
                "the worker process died while running this execution "
                f"({describe_exit(returncode)})",
            ),
        )
    if reason == "time":
        return Outcome(
            ok=False,
            error=error(
                "daisi.TimeLimitExceeded",
                f"execution exceeded its time limit of {job.timeout:g} s",
            ),
        )
    if reason == "memory":
        return Outcome(
            ok=False,
            error=error(
                "daisi.MemoryLimitExceeded",
                f"execution exceeded its memory limit of {format_bytes(memory_limit or 0)} (the "
                "resident memory of the worker and its child processes reached "
                f"{format_bytes(worker.peak_rss)})",
            ),
        )
    if reason == "protocol":
        return Outcome(
            ok=False,
            error=error("daisi.WorkerCrashed", "the worker process sent a malformed message"),
        )
    return Outcome(
        ok=False,
        error=error(
            "daisi.WorkerStopped",
            "the worker pool was shut down while this execution was running",
        ),
    )
