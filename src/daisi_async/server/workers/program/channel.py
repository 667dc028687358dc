"""The worker's end of its socket (:class:`Channel`), and leaving the process (:func:`exit_now`)."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import sys
import threading
from collections.abc import Mapping
from typing import Any, NoReturn, cast

from daisi_async.server import _frames
from daisi_async.server.workers import proctree

__all__ = ["Channel", "exit_now", "kill_descendants"]

_SMALL_SEND = 1 << 16


def kill_descendants() -> None:
    """SIGKILL every process below this one."""
    if proctree.has_children():
        proctree.kill_tree(os.getpid(), include_root=False, timeout=1.0)


def exit_now(code: int = 0) -> NoReturn:
    """Leave at once: no atexit handlers, no waiting for the Daisi's threads; but first
    kill the processes below the worker (they would outlive it, re-parented to init)."""
    with contextlib.suppress(Exception):  # best effort on the way out
        kill_descendants()
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # best effort on the way out
            pass
    os._exit(code)


_CHUNK = 1 << 16
"""Bytes asked of the socket per read into the buffer."""


class _SocketReader:
    """Blocking reads of exact sizes from a socket through a buffer whose fill is known
    (a file object's buffer can't be looked into without blocking)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.buffer = bytearray()

    def read(self, n: int) -> bytes:
        """``n`` bytes, or fewer at the end of the stream."""
        buf = self.buffer
        while len(buf) < n and n - len(buf) <= _CHUNK:
            chunk = self._sock.recv(_CHUNK)
            if not chunk:
                break
            buf += chunk
        if len(buf) >= n or n - len(buf) <= _CHUNK:
            data = bytes(buf[:n])
            del buf[:n]
            return data
        # A large body: read straight into the object given back (no second copy).
        out = bytearray(n)
        have = len(buf)
        out[:have] = buf
        buf.clear()
        view = memoryview(out)
        while have < n:
            got = self._sock.recv_into(view[have:])
            if not got:
                return bytes(out[:have])
            have += got
        # A bytearray: the body is only read (through memoryview, by dill), never hashed.
        return cast(bytes, out)


class Channel:
    """The worker's end of the socket: blocking reads, thread-safe frame sends."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._reader = _SocketReader(sock)

    def recv(self) -> tuple[dict[str, Any], bytes] | None:
        """The next frame from the server, or ``None`` at the end of the stream."""
        return _frames.read_frame(self._reader)

    def pending(self) -> bool:
        """Whether a frame (or the end of the stream) can be read now, without waiting.

        The server writes each frame whole, so a frame that has begun to arrive is read
        to its end at once."""
        return bool(self._reader.buffer) or bool(select.select([self._sock], [], [], 0)[0])

    def send(self, header: Mapping[str, Any], body: bytes = b"") -> None:
        """Send one frame; exit the process if the server has gone away."""
        head = _frames.encode_head(header, len(body))
        with self._lock:
            try:
                if len(body) <= _SMALL_SEND:
                    self._sock.sendall(head + body)
                else:
                    self._sock.sendall(head)
                    self._sock.sendall(body)
            except OSError:
                exit_now()

    def send_raw(self, data: bytes) -> None:
        """Send already encoded frames as one write."""
        with self._lock:
            try:
                self._sock.sendall(data)
            except OSError:
                exit_now()
