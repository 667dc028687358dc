"""One server per store: an OS lock on ``<store>/lock``, released by the kernel on exit.

``flock`` locks belong to the open file, so a server killed with SIGKILL never leaves a
stale lock behind; the file also holds the holder's pid, for the message a second server
prints when it is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

__all__ = ["StoreLock", "StoreLockedError"]


class StoreLockedError(Exception):
    """Another live process holds the store's lock.

    Example:
        >>> str(StoreLockedError(Path("/srv/.daisi"), 4242))
        "the store /srv/.daisi is in use by another daisi serve (pid 4242)"
    """

    def __init__(self, root: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid else "pid unknown"
        super().__init__(f"the store {root} is in use by another daisi serve ({who})")
        self.root = root
        self.pid = pid


class StoreLock:
    """An exclusive, non-blocking lock on a store folder, held until :meth:`release`.

    Example:
        >>> lock = StoreLock.acquire(Path(".daisi"))  # doctest: +SKIP
        >>> lock.release()  # doctest: +SKIP
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, root: Path) -> StoreLock:
        """Take the lock of ``root`` or raise :class:`StoreLockedError` at once."""
        root.mkdir(parents=True, exist_ok=True)
        path = root / "lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise StoreLockedError(root, holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        """Give the lock up (closing the file releases it)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
