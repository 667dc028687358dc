"""What the core may ask of a server, declared once: the :class:`Dialect` interface.

Every ability the core uses is a method here, with a default where a dialect may lack
it (cancelling, background work, early results), so the core never probes a dialect
for optional attributes. :mod:`.legacy` speaks the historical pydaisi routes; :mod:`.v1`
the runtime's extensions; :mod:`.negotiate` picks one per server.
"""

from __future__ import annotations

import abc
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from anyio.abc import TaskGroup

from .._dispatch import Slot
from .._errors import DaisiCancelledError, DaisiError, DaisiExecutionError
from .._failures import json_of, replies
from .._serialization import LOCAL_VERSIONS
from .._transport import Transport
from .._wire import ARGUMENT_ERROR, ExecutionStatus

__all__ = ["DaisiInfo", "Dialect", "Ref", "RemoteState", "new_key"]


@dataclass(frozen=True)
class Ref:
    """An argument that is the (remote) result of another execution."""

    execution_id: str


@dataclass
class DaisiInfo:
    """A Daisi as the server describes it."""

    id: str
    name: str
    owner: str
    description: str
    endpoints: dict[str, dict[str, Any]]
    broken: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: Mapping[str, Any], fallback_name: str = "") -> DaisiInfo:
        """Parse the Daisi object of the protocol (legacy or v1)."""
        eps = body.get("endpoints") or []
        broken = body.get("broken")
        return cls(
            id=str(body["id"]),
            name=str(body.get("name") or fallback_name),
            owner=str(body.get("owner") or ""),
            description=str(body.get("description") or ""),
            endpoints={str(e["name"]): dict(e) for e in eps},
            broken=None if broken is None else str(broken),
            raw=dict(body),
        )


@dataclass
class RemoteState:
    """What the client knows of an execution after a status or a wait."""

    id: str
    status: ExecutionStatus
    error: dict[str, str] | None = None
    result: dict[str, Any] | None = None  # dialect-specific handle on the result

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> RemoteState:
        """A v1 Execution object (``TypeError`` / ``ValueError`` / ``KeyError`` if it is
        not one: dialects read replies under :func:`~.._failures.reply_errors`)."""
        error = body.get("error")
        result = body.get("result")
        if error is not None and not isinstance(error, dict):
            raise TypeError(f"an execution's error must be an object, not {error!r}")
        if result is not None and not isinstance(result, dict):
            raise TypeError(f"an execution's result must be an object, not {result!r}")
        return cls(
            id=str(body["id"]),
            status=_status(body["status"]),
            error=None if error is None else {str(k): _text(v) for k, v in error.items()},
            result=result,
        )

    def raise_for_failure(self) -> None:
        """Raise the error of a FAILED or CANCELLED execution."""
        if self.status is ExecutionStatus.CANCELLED:
            msg = (self.error or {}).get("message") or "cancelled"
            raise DaisiCancelledError(
                f"execution {self.id} was cancelled: {msg}", execution_id=self.id
            )
        if self.status is ExecutionStatus.FAILED:
            err = self.error or {}
            message = err.get("message", "")
            if err.get("type") == ARGUMENT_ERROR:
                message += (
                    f" (this client runs Python {LOCAL_VERSIONS['python']} "
                    f"with dill {LOCAL_VERSIONS['dill']})"
                )
            raise DaisiExecutionError.from_remote(
                execution_id=self.id,
                exc_type=err.get("type"),
                message=message,
                traceback=err.get("traceback", ""),
            )


_STATUSES = {s.value: s for s in ExecutionStatus}


def _status(value: Any) -> ExecutionStatus:
    """``ExecutionStatus(value)`` (``ValueError`` if it is none), a dict lookup away for
    the statuses there are (two per call of a fan-out)."""
    found = _STATUSES.get(value) if isinstance(value, str) else None
    return found if found is not None else ExecutionStatus(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def new_key() -> str:
    """A fresh idempotency key: 128 random bits drawn once per process, then a counter
    (a fan-out makes one per call: a counter costs a tenth of a UUID, with no system
    call). A forked child draws its own bits, so parent and child never share a key.

    Example:
        >>> new_key() != new_key()
        True
    """
    return f"{_key_prefix}{next(_key_count):x}"


def _new_key_prefix() -> None:
    global _key_prefix, _key_count
    _key_prefix = uuid.uuid4().hex + "-"
    _key_count = itertools.count()


_key_prefix = ""
_key_count = itertools.count()
_new_key_prefix()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_key_prefix)


class Dialect(abc.ABC):
    """Everything the core asks of a server.

    Executions are named by their Daisi's id and their own id (the legacy routes nest
    them under the Daisi). Abstract methods are what every dialect must do; the others
    have defaults: the historical routes for workers and the catalogue, no background
    work, no early results, and no cancelling.
    """

    name: ClassVar[str] = ""
    """``"v1"`` or ``"legacy"``."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    @property
    def api(self) -> str:
        """The server's API root (for messages)."""
        return self.transport.api

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request as this dialect sends it (see :meth:`.._transport.Transport.request`)."""
        return await self.transport.request(method, path, **kwargs)

    # -- lifecycle --------------------------------------------------------------------------
    def attach(self, task_group: TaskGroup | None) -> None:  # noqa: B027 - optional hook
        """Run background work (batching, shared waits) in ``task_group`` from now on."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Stop background work (requests in flight are abandoned)."""

    # -- Daisies ----------------------------------------------------------------------------
    @abc.abstractmethod
    async def connect(self, name_or_id: str) -> DaisiInfo:
        """Find a Daisi by name, ``owner/name`` or id (404 -> DaisiNotFoundError)."""

    @replies
    async def catalogue(self) -> list[dict[str, Any]]:
        """Every Daisi the caller can see, sorted by name."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            r = await self.request(
                "GET",
                "/daisies/collections/all/daisies",
                params={"page": page, "pageSize": 500},
            )
            data = json_of(r)["data"]
            chunk = data["data"]
            out.extend({**d, "id": str(d["id"]), "name": str(d["name"])} for d in chunk)
            if len(chunk) < 500 or len(out) >= int(data.get("total", 0)):
                break
            page += 1
        return sorted(out, key=lambda d: str(d.get("name", "")).lower())

    @replies
    async def workers_number(self, daisi_id: str) -> int:
        """Size of the Daisi's worker pool."""
        r = await self.request("GET", f"/daisies/workers/{daisi_id}/number")
        return int(json_of(r))

    @replies
    async def workers_status(self, daisi_id: str) -> str:
        """``ready_to_update``, ``increasing`` or ``decreasing``."""
        r = await self.request("GET", f"/daisies/workers/{daisi_id}/status")
        return str(json_of(r)["message"])

    @replies
    async def workers_set(self, daisi_id: str, number: int) -> str:
        """Resize the Daisi's worker pool."""
        r = await self.request(
            "POST", f"/daisies/workers/{daisi_id}", json={"worker_number": number}, idempotent=True
        )
        return str(json_of(r)["message"])

    # -- executions -------------------------------------------------------------------------
    @abc.abstractmethod
    async def submit(
        self,
        daisi_id: str,
        endpoint: str,
        args: Mapping[str, Any],
        key: str,
        *,
        order: int = 0,
        linger: bool = False,
    ) -> RemoteState:
        """Create an execution (``key`` makes retries safe where supported).

        Submissions issued together are sent in ``order`` (the handles' creation order),
        whatever order the tasks that issue them happen to run in. ``linger``: the
        caller waits for the end next, so the reply may come a moment later with the
        end in it, where the dialect can do that.
        """

    def result_slot(self, eid: str) -> Slot[RemoteState]:
        """Where the execution's terminal state lands if it arrives unasked (e.g. on the
        stream that submitted it). Hold it while waiting. Default: a slot never filled."""
        return Slot()

    @abc.abstractmethod
    async def wait(self, daisi_id: str, eid: str) -> RemoteState:
        """Wait until the execution ends."""

    @abc.abstractmethod
    async def fetch(self, daisi_id: str, eid: str) -> RemoteState:
        """The execution's current state (404 -> DaisiNotFoundError)."""

    @abc.abstractmethod
    async def value(self, state: RemoteState) -> Any:
        """The result object of a FINISHED execution."""

    @abc.abstractmethod
    def status_stream(
        self, daisi_id: str, eid: str, last: ExecutionStatus | None
    ) -> AsyncIterator[ExecutionStatus]:
        """Each new status until a terminal one."""

    @abc.abstractmethod
    async def logs(self, daisi_id: str, eid: str) -> list[str]:
        """The log lines so far."""

    @abc.abstractmethod
    def log_stream(self, daisi_id: str, eid: str) -> AsyncIterator[str]:
        """Every log line from the start, live, until the execution ends."""

    async def cancel(self, daisi_id: str, eid: str) -> RemoteState:
        """Stop a run. Default: this server can't (``DaisiError``)."""
        raise DaisiError(
            f"the server at {self.transport.base_url} does not support cancelling "
            f"executions ({self.name} protocol)"
        )

    # -- executions by id alone, and the list ------------------------------------------------
    async def record(self, eid: str) -> dict[str, Any]:
        """The execution object of the protocol (``daisi_id``, ``endpoint``, ``status``,
        times, ``error``), found by its id alone. Default: this server can't."""
        raise self._lacks("find an execution by its id alone")

    async def executions(
        self, *, daisi: str | None, statuses: list[str], limit: int, before: str | None
    ) -> list[dict[str, Any]]:
        """The caller's executions, newest first (at most ``limit``). Default: this
        server can't."""
        raise self._lacks("list executions")

    def _lacks(self, what: str) -> DaisiError:
        return DaisiError(
            f"the server at {self.transport.base_url} can't {what}: it speaks only the "
            f"{self.name} protocol (a Daisi runtime without --legacy-only can)"
        )
