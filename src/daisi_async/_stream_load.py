"""Unpickling a large download while it arrives, without a buffer of the whole of it.

The unpickler runs in a worker thread and reads from :class:`ChunkReader`, which takes
the chunks the event loop receives. A large ``bytes`` / ``bytearray`` in the pickle
(the data of a numpy array, for one) is read straight into the object it becomes
(``readinto``), so the payload is in memory once, not twice (a download buffer and a
copy), and decoding overlaps with the transfer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import dill

__all__ = ["BATCH_BYTES", "ChunkReader", "load_stream"]

BATCH_BYTES = 1 << 20
"""Chunks travel to the unpickler's thread in batches of about this many bytes."""


class ChunkReader:
    """A file for the unpickler over chunks that ``more()`` returns (``[]`` at the end)."""

    def __init__(self, more: Callable[[], list[bytes]]) -> None:
        self._more = more
        self._chunks: deque[memoryview] = deque()
        self._ended = False

    def _fill(self) -> bool:
        while not self._chunks:
            if self._ended:
                return False
            batch = self._more()
            if not batch:
                self._ended = True
                return False
            self._chunks.extend(memoryview(c) for c in batch if len(c))
        return True

    def readinto(self, target: Any) -> int:
        view = memoryview(target).cast("B")
        filled = 0
        while filled < len(view) and self._fill():
            head = self._chunks[0]
            n = min(len(head), len(view) - filled)
            view[filled : filled + n] = head[:n]
            filled += n
            if n == len(head):
                self._chunks.popleft()
            else:
                self._chunks[0] = head[n:]
        return filled

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while self._fill():
                parts.append(bytes(self._chunks.popleft()))
            return b"".join(parts)
        buf = bytearray(n)
        got = self.readinto(buf)
        del buf[got:]
        return bytes(buf)

    def readline(self) -> bytes:
        out = bytearray()
        while self._fill():
            head = self._chunks[0]
            end = bytes(head).find(b"\n")
            if end >= 0:
                out += head[: end + 1]
                if end + 1 == len(head):
                    self._chunks.popleft()
                else:
                    self._chunks[0] = head[end + 1 :]
                return bytes(out)
            out += head
            self._chunks.popleft()
        return bytes(out)


async def load_stream(chunks: AsyncIterator[bytes]) -> Any:
    """The object in the dill bytes that ``chunks`` yields, unpickled as they arrive.

    An error of ``chunks`` (the transfer) is raised as it is, before the unpickler's
    (which then only says that the data ended early); so is cancellation.
    """
    send, receive = anyio.create_memory_object_stream[list[bytes]](2)
    failure: list[Exception] = []

    async def pump() -> None:
        try:
            async with send:
                batch: list[bytes] = []
                size = 0
                async for chunk in chunks:
                    batch.append(chunk)
                    size += len(chunk)
                    if size >= BATCH_BYTES:
                        await send.send(batch)
                        batch, size = [], 0
                if batch:
                    await send.send(batch)
        except anyio.BrokenResourceError:
            pass  # the unpickler stopped reading: its error says why
        except Exception as exc:
            failure.append(exc)

    def more() -> list[bytes]:
        try:
            return anyio.from_thread.run(receive.receive)
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return []

    def load() -> Any:
        return dill.Unpickler(ChunkReader(more)).load()

    value: Any = None
    error: Exception | None = None
    async with receive, anyio.create_task_group() as tg:
        tg.start_soon(pump)
        try:
            value = await anyio.to_thread.run_sync(load)
        except Exception as exc:
            error = exc
        finally:
            receive.close()
            tg.cancel_scope.cancel()
    await anyio.lowlevel.checkpoint_if_cancelled()
    if failure:
        raise failure[0]
    if error is not None:
        raise error
    return value
