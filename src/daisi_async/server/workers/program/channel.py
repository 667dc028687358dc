"""The worker's end of its socket (:class:`Channel`), and leaving the process (:func:`exit_now`)."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from collections.abc import Mapping
from typing import Any, NoReturn

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


class Channel:
    """The worker's end of the socket: blocking reads, thread-safe frame sends."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._rfile = sock.makefile("rb")

    def recv(self) -> tuple[dict[str, Any], bytes] | None:
        """The next frame from the server, or ``None`` at the end of the stream."""
        return _frames.read_frame(self._rfile)

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
