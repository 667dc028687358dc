"""Multiplexed waits: many pending executions share one ``POST /v1/executions/wait``.

Waiters wait on a :class:`~..._dispatch.Slot`; background streams fill the slots as
executions end. An execution is *covered* while some stream (a wait stream, or the
stream that submitted it) will report its end. A dropped wait stream is resumed for
the executions still pending, following the one retry policy.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel

from ..._dispatch import Signal, Slot, Spawner
from ..._failures import dropped, error_for_status, translate
from ..._log import logger
from ..._retry import Progress, retrying
from ..._transport import Transport, stream_errors
from ..._wire import MAX_WAIT_SECONDS
from ..base import RemoteState
from .routes import MAX_STREAMS, STREAM_TIMEOUT, WAIT_BATCH

__all__ = ["Waiter"]

WAIT_PATH = "/v1/executions/wait"


class Waiter:
    """Where terminal states land; waiters wait on slots, streams fill them.

    ``poll(eid)`` is the long-poll used where no background task can run.
    """

    def __init__(
        self,
        transport: Transport,
        spawner: Spawner,
        poll: Callable[[str], Awaitable[RemoteState]],
    ) -> None:
        self.transport = transport
        self.spawner = spawner
        self.poll = poll
        self.slots: weakref.WeakValueDictionary[str, Slot[RemoteState]] = (
            weakref.WeakValueDictionary()
        )
        self.signals: dict[str, Signal] = {}
        self.covered: set[str] = set()
        self.queue: list[str] = []
        self.flush_scheduled = False
        self.streams: list[anyio.CancelScope] = []
        self.progress = Progress()
        self._told_fallback = False

    def slot(self, eid: str) -> Slot[RemoteState]:
        """The slot of ``eid`` (hold it: slots nobody holds are forgotten)."""
        slot = self.slots.get(eid)
        if slot is None:
            slot = Slot()
            self.slots[eid] = slot
        return slot

    def deliver(self, state: RemoteState) -> None:
        """An execution ended: fill its slot and wake its waiters."""
        self.covered.discard(state.id)
        slot = self.slots.get(state.id)
        if slot is not None:
            slot.set(state)
        self._wake(state.id)

    def fail(self, eid: str, error: BaseException) -> None:
        """Waiting for ``eid`` failed: its waiters raise ``error``."""
        self.covered.discard(eid)
        slot = self.slots.get(eid)
        if slot is not None:
            slot.fail(error)
        self._wake(eid)

    def cover(self, eid: str) -> None:
        """Some stream will report the end of ``eid``."""
        self.covered.add(eid)

    def uncover(self, ids: list[str]) -> None:
        """These streams ended: their waiters must find another way."""
        for eid in ids:
            self.covered.discard(eid)
            self._wake(eid)

    def _wake(self, eid: str) -> None:
        sig = self.signals.pop(eid, None)
        if sig is not None:
            sig.fire()

    async def wait(self, eid: str) -> RemoteState:
        """The terminal state of ``eid``."""
        slot = self.slot(eid)
        while not slot.done:
            if eid not in self.covered:
                if not self.spawner.can_spawn():
                    if not self._told_fallback:
                        self._told_fallback = True
                        logger.info("no background tasks here: one long-poll per wait")
                    state = await self.poll(eid)
                    if state.status.is_terminal:
                        slot.set(state)
                    continue
                self.covered.add(eid)
                self.queue.append(eid)
                if not self.flush_scheduled:
                    self.flush_scheduled = True
                    self.spawner.spawn(self._flush)
            sig = self.signals.get(eid)
            if sig is None:
                sig = self.signals[eid] = Signal()
            await sig.wait()
        return slot.value()

    async def _flush(self) -> None:
        await anyio.lowlevel.checkpoint()
        self.flush_scheduled = False
        ids, self.queue = self.queue, []
        ids = [i for i in dict.fromkeys(ids) if self._pending(i)]
        if not ids:
            return
        if len(self.streams) >= MAX_STREAMS:
            # Too many open waits: merge them all into the new one.
            for scope in self.streams:
                scope.cancel()
        for start in range(0, len(ids), WAIT_BATCH):
            self.spawner.spawn(self._stream, ids[start : start + WAIT_BATCH])

    def _pending(self, eid: str) -> bool:
        slot = self.slots.get(eid)
        return slot is not None and not slot.done

    async def _stream(self, ids: list[str]) -> None:
        pending = set(ids)
        where = self.transport.api + WAIT_PATH
        with anyio.CancelScope() as scope:
            self.streams.append(scope)
            try:
                async for attempt in retrying(
                    self.transport.settings.retries,
                    retry=dropped,
                    what=f"the wait for {len(pending)} executions",
                    progress=self.progress,
                ):
                    with attempt:
                        pending = {i for i in pending if self._pending(i)}
                        if attempt.retry_state.attempt_number > 1:
                            logger.info("resuming the wait for %d executions", len(pending))
                        if pending:
                            await self._read(sorted(pending), pending)
            except Exception as exc:  # never let a background task crash the group
                err = translate(exc, where)
                for eid in list(pending):
                    self.fail(eid, err)
                pending.clear()
            finally:
                self.streams.remove(scope)
                self.uncover(list(pending))

    async def _read(self, ids: list[str], pending: set[str]) -> None:
        async with self.transport.stream(
            "POST",
            WAIT_PATH,
            json={"ids": ids, "timeout": MAX_WAIT_SECONDS},
            timeout=STREAM_TIMEOUT,
        ) as response:
            with stream_errors(response):
                async for line in response.aiter_lines():
                    if line:
                        self._on_line(line, pending)

    def _on_line(self, line: str, pending: set[str]) -> None:
        msg = json.loads(line)
        self.progress.made()
        kind = msg.get("type")
        if kind == "done":
            state = RemoteState.from_json(msg["execution"])
            pending.discard(state.id)
            self.deliver(state)
        elif kind == "error":
            eid = str(msg.get("id"))
            pending.discard(eid)
            err = msg["error"]
            where = f"POST {self.transport.api}{WAIT_PATH}"
            self.fail(eid, error_for_status(404, str(err.get("message")), where=where))
