"""A reply's body read from its socket by a worker thread: a file for the unpickler.

:func:`~._socket_get.open_get` opens the reply; :meth:`SocketBody.run` runs the reader
(an unpickler, say) in a worker thread, whose blocking ``recv_into`` calls put a large
read straight into its target (the data of a numpy array): the payload is in memory
once, and no event-loop turn is spent per chunk. The socket's timeout is the client's
read timeout. Cancelling shuts the socket down, which ends a read the thread is
blocked in; the thread then closes the socket (never while another thread uses it).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx

__all__ = ["SMALL_READ", "SocketBody"]

T = TypeVar("T")
SMALL_READ = 1 << 18
"""Reads smaller than this are served from a buffer refilled this much at a time."""


class SocketBody:
    """The body of a ``200`` reply: ``length`` bytes, ``buffered`` of them already read.

    A file for an unpickler (``read``, ``readinto``, ``readline``), read by one thread.
    """

    def __init__(self, sock: socket.socket, buffered: bytes, length: int, ctype: str) -> None:
        self.length, self.content_type = length, ctype
        self.timeout: float | None = None
        self._sock, self._lock = sock, threading.Lock()
        self._state = "idle"  # -> "reading" (a thread owns the socket) -> "closed"
        self._buf, self._pos = bytearray(buffered[:length]), 0
        self._left = length - len(self._buf)  # not yet received

    def _recv(self, view: memoryview) -> int:
        try:
            n = self._sock.recv_into(view[: self._left])
        except OSError as exc:  # TimeoutError too
            kind = httpx.ReadTimeout if isinstance(exc, TimeoutError) else httpx.ReadError
            raise kind(str(exc) or type(exc).__name__) from exc
        if n == 0:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body: "
                f"received {self.length - self._left} bytes, expected {self.length}"
            )
        self._left -= n
        return n

    def _refill(self) -> bool:
        if not self._left:
            return False
        self._buf, self._pos = bytearray(min(SMALL_READ, self._left)), 0
        del self._buf[self._recv(memoryview(self._buf)) :]
        return True

    def readinto(self, target: Any) -> int:
        view, n = memoryview(target).cast("B"), 0
        while n < len(view):
            if self._pos == len(self._buf):
                if len(view) - n >= SMALL_READ and self._left:
                    n += self._recv(view[n:])  # straight into the target
                    continue
                if not self._refill():
                    break
            k = min(len(view) - n, len(self._buf) - self._pos)
            view[n : n + k] = memoryview(self._buf)[self._pos : self._pos + k]
            self._pos, n = self._pos + k, n + k
        return n

    def read(self, n: int = -1) -> bytes:
        out = bytearray(len(self._buf) - self._pos + self._left if n is None or n < 0 else n)
        del out[self.readinto(out) :]
        return bytes(out)

    def readline(self) -> bytes:
        out = bytearray()
        while not out.endswith(b"\n") and (self._pos < len(self._buf) or self._refill()):
            end = self._buf.find(b"\n", self._pos) + 1 or len(self._buf)
            out += self._buf[self._pos : end]
            self._pos = end
        return bytes(out)

    def finish(self) -> None:
        """Read what is left of the body: it must all arrive (else the transfer failed)."""
        while self._refill():
            pass

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` (which reads this body) in a worker thread, which closes the socket
        after. Cancelling shuts the socket down: a read the thread is blocked in ends."""

        def work() -> T:
            with self._lock:
                if self._state == "closed":
                    raise httpx.ReadError("the download was cancelled")
                self._state = "reading"
            try:
                self._sock.settimeout(self.timeout)
                return fn()
            finally:
                self.abort(reading=False)

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._abort_when_cancelled)
                try:
                    value = await anyio.to_thread.run_sync(work)
                except Exception:
                    await anyio.lowlevel.checkpoint_if_cancelled()  # cancelled: say so
                    raise
                tg.cancel_scope.cancel()
        finally:
            self.abort()
        return value

    async def _abort_when_cancelled(self) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            self.abort()

    def abort(self, *, reading: bool = True) -> None:
        """Close the socket; if a thread is reading it (``reading``), shut it down only
        (the thread's read ends, and the thread closes it)."""
        with self._lock:
            if reading and self._state == "reading":
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)
            else:
                self._state = "closed"
                self._sock.close()
