"""What the client needs from a server, whichever dialect it speaks.

:class:`Protocol` is implemented by :mod:`._v1` (the runtime's v1 extensions: batches,
multiplexed waits, event streams, binary blobs) and :mod:`._legacy` (the historical
pydaisi routes, with adaptive polling). :func:`negotiate` picks one per server.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import (
    DaisiCancelledError,
    DaisiExecutionError,
    DaisiNotFoundError,
    DaisiProtocolError,
    DaisiRequestError,
)
from ._serialization import LOCAL_VERSIONS
from ._transport import Transport, json_of, replies
from ._wire import ARGUMENT_ERROR, ExecutionStatus


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
        return cls(
            id=str(body["id"]),
            name=str(body.get("name") or fallback_name),
            owner=str(body.get("owner") or ""),
            description=str(body.get("description") or ""),
            endpoints={str(e["name"]): dict(e) for e in eps},
            broken=body.get("broken"),
            raw=dict(body),
        )


@dataclass
class RemoteState:
    """What the client knows of an execution after a status or a wait."""

    id: str
    status: ExecutionStatus
    error: dict[str, str] | None = None
    result: dict[str, Any] | None = None  # protocol-specific handle on the result

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> RemoteState:
        """A v1 Execution object (``TypeError`` / ``ValueError`` / ``KeyError`` if it is
        not one: dialects read replies under :func:`~._transport.reply_errors`)."""
        error = body.get("error")
        result = body.get("result")
        if error is not None and not isinstance(error, dict):
            raise TypeError(f"an execution's error must be an object, not {error!r}")
        if result is not None and not isinstance(result, dict):
            raise TypeError(f"an execution's result must be an object, not {result!r}")
        return cls(
            id=str(body["id"]),
            status=ExecutionStatus(body["status"]),
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


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def new_key() -> str:
    """A fresh idempotency key."""
    return uuid.uuid4().hex


class Protocol(abc.ABC):
    """The operations an execution handle and a Daisi need from the server."""

    name: str = ""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def aclose(self) -> None:
        """Stop background work (requests in flight are abandoned)."""
        return None

    @abc.abstractmethod
    async def connect(self, name_or_id: str) -> DaisiInfo:
        """Find a Daisi by name, ``owner/name`` or id."""

    @abc.abstractmethod
    async def submit(
        self, daisi_id: str, endpoint: str, args: Mapping[str, Any], key: str, *, order: int = 0
    ) -> RemoteState:
        """Create an execution (``key`` makes retries safe where supported).

        Submissions issued together are sent in ``order`` (the handles' creation order),
        whatever order the tasks that issue them happen to run in.
        """

    @abc.abstractmethod
    async def wait(self, eid: str) -> RemoteState:
        """Wait until the execution ends."""

    @abc.abstractmethod
    async def fetch(self, eid: str) -> RemoteState:
        """The execution's current state (404 -> DaisiNotFoundError)."""

    @abc.abstractmethod
    async def value(self, state: RemoteState) -> Any:
        """The result object of a FINISHED execution."""

    @abc.abstractmethod
    def status_stream(
        self, eid: str, last: ExecutionStatus | None
    ) -> AsyncIterator[ExecutionStatus]:
        """Each new status until a terminal one."""

    @abc.abstractmethod
    async def logs(self, eid: str) -> list[str]:
        """The log lines so far."""

    @abc.abstractmethod
    def log_stream(self, eid: str) -> AsyncIterator[str]:
        """Every log line from the start, live, until the execution ends."""

    @abc.abstractmethod
    async def cancel(self, eid: str) -> RemoteState:
        """Stop a run."""

    # -- Daisi-level operations, the same routes in both dialects ------------------------
    @replies
    async def workers_number(self, daisi_id: str) -> int:
        """Size of the Daisi's worker pool."""
        r = await self.transport.request("GET", f"/daisies/workers/{daisi_id}/number")
        return int(json_of(r))

    @replies
    async def workers_status(self, daisi_id: str) -> str:
        """``ready_to_update``, ``increasing`` or ``decreasing``."""
        r = await self.transport.request("GET", f"/daisies/workers/{daisi_id}/status")
        return str(json_of(r)["message"])

    @replies
    async def workers_set(self, daisi_id: str, number: int) -> str:
        """Resize the Daisi's worker pool."""
        r = await self.transport.request(
            "POST", f"/daisies/workers/{daisi_id}", json={"worker_number": number}, idempotent=True
        )
        return str(json_of(r)["message"])

    @replies
    async def catalogue(self) -> list[dict[str, Any]]:
        """Every Daisi the caller can see, sorted by name."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            r = await self.transport.request(
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


async def negotiate(transport: Transport) -> Protocol:
    """The best dialect the server speaks: v1 when advertised, else legacy."""
    from ._legacy import LegacyProtocol
    from ._v1 import V1Protocol

    try:
        r = await transport.request("GET", "/capabilities")
        caps = json_of(r)
    except (DaisiNotFoundError, DaisiRequestError, DaisiProtocolError):
        return LegacyProtocol(transport)
    versions = caps.get("versions") if isinstance(caps, dict) else None
    if isinstance(versions, list) and 1 in versions and caps.get("protocol") == "daisi":
        return V1Protocol(transport, caps)
    return LegacyProtocol(transport)
