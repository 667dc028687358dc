"""What the store keeps: executions, their events, blobs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..._wire import ExecutionStatus

__all__ = ["Blob", "Event", "ExecutionRecord"]


@dataclass(eq=False)
class ExecutionRecord:
    """One execution as the runtime keeps it.

    The fields are the *durable* state: they change only once the write that changes
    them is committed, so a route never shows what a crash could take back.
    :attr:`target` is the newest status the engine asked for, durable or not; it
    guards transitions (a cancelled run can't be finished afterwards).
    """

    id: str
    daisi_id: str
    endpoint: str
    owner: str | None
    status: ExecutionStatus
    created_at: float
    args: dict[str, dict[str, Any]]
    started_at: float | None = None
    finished_at: float | None = None
    error: dict[str, str] | None = None
    result_key: str | None = None
    result_size: int = 0
    result_json: str | None = None
    seq: int = 0
    """The sequence number of the last event recorded (committed or not)."""
    last_line: str | None = None
    target: ExecutionStatus | None = None

    def __post_init__(self) -> None:
        if self.target is None:
            self.target = self.status

    @property
    def latest(self) -> ExecutionStatus:
        """The newest status asked for (the durable one once its write is committed)."""
        assert self.target is not None
        return self.target

    @property
    def upstream(self) -> list[str]:
        """Ids of the executions whose results this one takes as arguments."""
        return [a["execution"] for a in self.args.values() if "execution" in a]


@dataclass(frozen=True)
class Event:
    """A status change or a log line of one execution."""

    seq: int
    kind: str  # "status" | "log"
    data: str  # the status value, or the log line
    stream: str | None
    time: float

    def to_json(self) -> dict[str, Any]:
        """The event as the v1 routes show it."""
        if self.kind == "status":
            return {"seq": self.seq, "status": self.data, "time": self.time}
        return {"seq": self.seq, "stream": self.stream, "line": self.data, "time": self.time}


@dataclass(frozen=True)
class Blob:
    """A stored object: inline bytes or a file."""

    key: str
    size: int
    data: bytes | None
    path: Path | None
    owner: str | None = None
    """Who stored it (None: anonymous); results belong to their execution's owner."""

    def read(self) -> bytes:
        """The whole blob in memory (use :meth:`Store.iter_blob` for large ones)."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()
