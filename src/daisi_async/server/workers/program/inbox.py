"""The worker's inbox (:class:`Inbox`): the jobs the server sent that have not begun,
and the reading of the frames that bring them (``run``), take them back (``cancel``)
or end the worker (``exit``).

The main thread reads frames between jobs. While a job runs, nothing reads, except
that a watcher thread looks every :data:`WATCH_INTERVAL` seconds whether the job has
run :data:`LONG_JOB` seconds or more; then it reads what has arrived, so that the
server can take back the jobs queued behind a long one (``cancel``, answered
``skipped``) and give them to an idle worker. A job leaves the inbox when it begins:
it can't be taken back after that. The watcher rests (blocked on an event) after
:data:`WATCH_REST` seconds without a job, so an idle worker costs nothing.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

from daisi_async.server import _frames

from .channel import Channel

__all__ = ["LONG_JOB", "WATCH_INTERVAL", "WATCH_REST", "Frame", "Inbox"]

Frame = tuple[dict[str, Any], bytes]

WATCH_INTERVAL = 0.005
"""Seconds between two looks of the watcher thread at the running job."""
LONG_JOB = 0.005
"""A job that has run this many seconds lets the watcher read the frames that came."""
WATCH_REST = 1.0
"""Seconds without a job after which the watcher rests until the next job."""


class Inbox:
    """The jobs sent and not yet begun (see the module docstring)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.open = True
        """False once ``exit`` or the end of the stream was read."""
        self._queue: collections.deque[Frame] = collections.deque()
        self._lock = threading.Lock()  # whoever reads frames or changes the queue holds it
        self._since: float | None = None  # when the running job began (None: none runs)
        self._awake = threading.Event()

    def watch(self) -> None:
        """Start the watcher thread (see the module docstring)."""
        threading.Thread(target=self._watch, name="daisi-inbox-watch", daemon=True).start()

    def next(self, *, wait: bool) -> Frame | None:
        """The next job to begin, which leaves the inbox (it can no longer be taken
        back); None if there is none (with ``wait``: once the stream has ended)."""
        with self._lock:
            self._take_arrived()
            while wait and self.open and not self._queue:
                self._take(self._receive())
            return self._queue.popleft() if self._queue else None

    def running(self) -> None:
        """A job begins (the watcher now looks at it)."""
        self._since = time.monotonic()
        if not self._awake.is_set():
            self._awake.set()

    def ended(self) -> None:
        """The job has ended."""
        self._since = None

    def _receive(self) -> Frame | None:
        try:
            return self.channel.recv()
        except (OSError, _frames.FrameError):
            return None

    def _take_arrived(self) -> None:
        while self.open and self.channel.pending():
            self._take(self._receive())

    def _take(self, frame: Frame | None) -> None:
        if frame is None:
            self.open = False
            return
        header = frame[0]
        op = header.get("op")
        if op == "run":
            self._queue.append(frame)
        elif op == "cancel":
            eid = header.get("eid")
            for queued in self._queue:
                if queued[0].get("eid") == eid:
                    self._queue.remove(queued)
                    self.channel.send({"op": "skipped", "eid": eid})
                    break
        elif op == "exit":
            self.open = False

    def _watch(self) -> None:
        last_job = time.monotonic()
        while True:
            self._awake.wait()
            time.sleep(WATCH_INTERVAL)
            since, now = self._since, time.monotonic()
            if since is None:
                if now - last_job > WATCH_REST:
                    self._awake.clear()
                    if self._since is not None:  # a job began meanwhile: keep watching
                        self._awake.set()
                continue
            last_job = now
            if now - since >= LONG_JOB and self._lock.acquire(blocking=False):
                try:
                    self._take_arrived()
                finally:
                    self._lock.release()
