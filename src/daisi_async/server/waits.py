"""Waiting for executions to end (a part of the engine's :class:`~.engine.Runtime`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from .errors import not_found
from .store import Event, ExecutionRecord, StorageError, Store

__all__ = ["Waits"]


class Waits:
    """Waits on the store's committed events (a part of :class:`~.engine.Runtime`)."""

    store: Store

    async def wait(self, eid: str, *, timeout: float | None) -> ExecutionRecord:
        """The execution once terminal, or as it is after ``timeout`` seconds."""
        rec = self.store.get(eid)
        if rec is None:
            raise not_found(f"no execution with id {eid!r}")
        self.check_storage(rec)  # may commit what a failing store held back: check after
        if rec.status.is_terminal or timeout == 0:
            return rec
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_event(r: ExecutionRecord, ev: Event | None) -> None:
            if done.done():
                return
            if ev is None:  # its latest changes could not be stored (yet): say so now
                done.set_exception(self._storage_failure())
            elif r.status.is_terminal:
                done.set_result(None)

        remove = self.store.listen(eid, on_event)
        # A timer, not ``asyncio.wait_for``: the end then wakes this task directly, not
        # through a waiter of wait_for's own (one loop turn less per call that waits).
        timer = None
        if timeout is not None:
            timer = asyncio.get_running_loop().call_later(timeout, _set_none, done)
        try:
            await done
        finally:
            remove()
            if timer is not None:
                timer.cancel()
        return rec

    def _storage_failure(self) -> StorageError:
        return self.store.failure or StorageError("the store could not be written", full=False)

    def check_storage(self, rec: ExecutionRecord) -> None:
        """Raise the storage error if ``rec`` has changes the failing store holds back
        (after one more try: the disk may work again)."""
        if self.store.failure is not None and rec.latest is not rec.status:
            self.store.flush()
            if self.store.failure is not None and rec.latest is not rec.status:
                raise self._storage_failure()

    async def wait_many(
        self, eids: list[str], *, timeout: float
    ) -> AsyncIterator[tuple[list[ExecutionRecord], list[str] | None]]:
        """Yield ``(ended, None)`` with the executions that ended since the last yield (all
        those ready at once, so a stream writes them together), then ``([], pending)``.

        The wait ends early (the rest listed as pending) when the store fails to commit
        the changes of one of them: the caller is told at once and may wait again.
        """
        queue: asyncio.Queue[ExecutionRecord | None] = asyncio.Queue()
        pending: dict[str, ExecutionRecord] = {}
        removers = []

        def on_event(r: ExecutionRecord, ev: Event | None) -> None:
            if ev is None:
                queue.put_nowait(None)
            elif r.status.is_terminal and r.id in pending:
                del pending[r.id]
                queue.put_nowait(r)

        for eid in eids:
            rec = self.store.get(eid)
            if rec is None:
                continue
            if rec.status.is_terminal:
                queue.put_nowait(rec)
                continue
            pending[eid] = rec
            removers.append(self.store.listen(eid, on_event))
            if self.store.failure is not None and rec.latest is not rec.status:
                queue.put_nowait(None)
        deadline = time.monotonic() + timeout
        try:
            while queue.qsize() or pending:
                left = deadline - time.monotonic()
                if left <= 0 and queue.empty():
                    break
                try:
                    item = (
                        queue.get_nowait()
                        if not queue.empty()
                        else await asyncio.wait_for(queue.get(), left)
                    )
                except asyncio.TimeoutError:
                    break
                if item is None:
                    break
                ended = [item]
                stop = False
                while not queue.empty():
                    more = queue.get_nowait()
                    if more is None:
                        stop = True
                        break
                    ended.append(more)
                yield ended, None
                if stop:
                    break
            yield [], list(pending)
        finally:
            for remove in removers:
                remove()


def _set_none(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
