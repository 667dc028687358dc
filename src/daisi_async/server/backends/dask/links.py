"""The runtime's stream to the Daisi host of one Dask worker (:class:`HostLink`).

One Dask comm per Dask worker carries every execution the runtime sends there, in both
directions, without the scheduler (see :mod:`.protocol`): ``run`` goes out, ``start``,
``log`` lines and ``done`` come back as they happen. When the comm breaks (the Dask
worker died or shut down, or the network failed), every execution still waiting on it
gets :class:`HostLost`, which says whether the execution had started there.

Example:
    >>> link = await HostLink.open(address, runtime="k", connection_args={},
    ...                            on_message=print, on_closed=print)  # doctest: +SKIP
    >>> reply = await link.run(msg, on_start=..., on_log=...)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from distributed.batched import BatchedSend
from distributed.comm.core import Comm, CommClosedError, connect

from .protocol import PROTOCOL, STREAM_HANDLER

__all__ = ["HostLink", "HostLost", "HostRefused", "NoHostYet"]

_log = logging.getLogger("daisi_async.server")


class HostLost(Exception):
    """The stream to a Dask worker broke while an execution was on it."""

    def __init__(self, address: str, why: str, *, started: bool) -> None:
        super().__init__(f"the Dask worker {address} was lost ({why})")
        self.address = address
        self.why = why
        self.started = started
        """Whether the execution had started there (else it never ran)."""


class HostRefused(Exception):
    """The Dask worker has no Daisi host, or one that speaks another protocol."""


class NoHostYet(HostRefused):
    """The Dask worker has no Daisi host yet (its plugins are being set up)."""


@dataclass
class _Pending:
    future: asyncio.Future[dict[str, Any]]
    on_start: Callable[[], None] | None
    on_log: Callable[[str, str], None]
    started: bool = False


class HostLink:
    """The stream to one Dask worker's host (see the module docstring)."""

    def __init__(
        self,
        address: str,
        comm: Comm,
        hello: Mapping[str, Any],
        *,
        on_message: Callable[[HostLink, dict[str, Any]], None],
        on_closed: Callable[[HostLink], None],
    ) -> None:
        self.address = address
        self.comm = comm
        self.slots = max(1, int(hello.get("slots", 1)))
        self.version = str(hello.get("version", ""))
        self.held: dict[str, int] = {str(k): int(v) for k, v in dict(hello.get("held", {})).items()}
        """Results the host kept when the link opened: execution id -> size."""
        self.states: dict[str, dict[str, Any]] = {}
        """The host's last report on its Daisies' pools, by install key."""
        self.in_flight = 0
        self.per_pool: collections.Counter[str] = collections.Counter()
        self.closed = False
        self.why = ""
        self._on_message = on_message
        self._on_closed = on_closed
        self._pending: dict[str, _Pending] = {}
        self._out = BatchedSend(interval=0)
        self._out.start(comm)
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(
        cls,
        address: str,
        *,
        runtime: str,
        connection_args: Mapping[str, Any],
        on_message: Callable[[HostLink, dict[str, Any]], None],
        on_closed: Callable[[HostLink], None],
        timeout: float = 10.0,
    ) -> HostLink:
        """Connect to the host of the Dask worker at ``address`` and read its hello.

        Raises:
            HostRefused: no host answered, or it speaks another protocol.
            OSError: the worker could not be reached.
        """
        comm = await connect(address, timeout=timeout, **connection_args)
        comm.allow_offload = False  # (see protocol.SERIALIZE_ABOVE)
        try:
            # reply=True: a worker without the handler answers None at once (the
            # handler itself never replies: it writes its hello, then owns the comm).
            await comm.write(
                {"op": STREAM_HANDLER, "reply": True, "protocol": PROTOCOL, "runtime": runtime}
            )
            try:
                batch = await asyncio.wait_for(comm.read(), timeout)
            except asyncio.TimeoutError:
                raise HostRefused(f"no Daisi host answered on {address}") from None
            if batch is None:
                raise NoHostYet(f"{address} has no Daisi host (yet)")
            msgs = list(batch) if isinstance(batch, (list, tuple)) else [batch]
            hello = msgs[0] if msgs else {}
            if hello.get("op") != "hello":
                raise HostRefused(f"{address} did not say hello")
            if hello.get("protocol") != PROTOCOL:
                raise HostRefused(
                    f"the Daisi host on {address} speaks protocol {hello.get('protocol')}, this"
                    f" runtime {PROTOCOL} (install the same daisi-async version on the workers;"
                    f" theirs is {hello.get('version')})"
                )
        except BaseException:
            comm.abort()
            raise
        link = cls(address, comm, hello, on_message=on_message, on_closed=on_closed)
        for msg in msgs[1:]:
            link._dispatch(msg)
        return link

    # -- sending -------------------------------------------------------------------------
    def send(self, msg: dict[str, Any]) -> None:
        """Send one message (dropped once the link is closed)."""
        if not self.closed:
            with contextlib.suppress(CommClosedError):
                self._out.send(msg)

    async def run(
        self,
        msg: dict[str, Any],
        *,
        on_start: Callable[[], None] | None,
        on_log: Callable[[str, str], None],
    ) -> dict[str, Any]:
        """Send a ``run`` message and wait for its ``done`` reply.

        Cancelling the wait cancels the run on the host.

        Raises:
            HostLost: the link broke first.
        """
        eid = str(msg["eid"])
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        pending = _Pending(future, on_start, on_log)
        if self.closed:
            raise HostLost(self.address, self.why, started=False)
        self._pending[eid] = pending
        self.send(msg)
        try:
            return await future
        except asyncio.CancelledError:
            if future.cancelled():  # (cancelling the wait cancelled the future) no reply yet
                self.send({"op": "cancel", "eid": eid})
            raise
        finally:
            if self._pending.get(eid) is pending:
                del self._pending[eid]

    # -- receiving -----------------------------------------------------------------------
    async def _read(self) -> None:
        why = "its connection closed"
        try:
            while True:
                batch = await self.comm.read()
                for msg in batch if isinstance(batch, (list, tuple)) else [batch]:
                    self._dispatch(msg)
        except (CommClosedError, OSError) as exc:
            why = self.why or (f"its connection closed: {exc}" if str(exc) else why)
        except asyncio.CancelledError:
            why = self.why or "the runtime closed the link"
        except Exception as exc:  # a malformed message: drop the link, not the runtime
            _log.exception("the stream from %s failed", self.address)
            why = f"its stream failed: {exc!r}"
        finally:
            self.close(why)

    def _dispatch(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        eid = str(msg.get("eid", ""))
        pending = self._pending.get(eid) if eid else None
        if op == "log":
            if pending is not None:
                pending.on_log(str(msg.get("stream", "stdout")), str(msg.get("line", "")))
        elif op == "start":
            if pending is not None and not pending.started:
                pending.started = True
                if pending.on_start is not None:
                    pending.on_start()
        elif op == "done":
            if pending is not None and not pending.future.done():
                if msg.get("started") and not pending.started:  # a short run: one message
                    self._dispatch({"op": "start", "eid": eid})
                pending.future.set_result(msg)
        elif op == "closing":
            self.why = f"the Dask worker is shutting down: {msg.get('reason', '')}"
            self.close(self.why)
        elif op == "pools":
            self.states = dict(msg.get("states") or {})
            self._on_message(self, msg)
        else:
            self._on_message(self, msg)

    def close(self, why: str) -> None:
        """Close the link: every execution still on it gets :class:`HostLost`."""
        if self.closed:
            return
        self.closed = True
        self.why = self.why or why
        for pending in list(self._pending.values()):
            if not pending.future.done():
                pending.future.set_exception(
                    HostLost(self.address, self.why, started=pending.started)
                )
        self._pending.clear()
        if asyncio.current_task() is not self._reader:
            self._reader.cancel()
        self.comm.abort()
        self._on_closed(self)
