"""Where the results kept on Dask workers are (:class:`KeptResults`), for the runtime.

A result larger than the inline limit stays on the Dask worker that made it. The index
learns of it from the execution's ``done`` message, or from a worker's ``hello`` (after a
runtime restart). When a worker's link closes, its results are gone: the index then
remembers why, to say so to whoever asks for one of them.

Example:
    >>> kept = KeptResults()
    >>> kept.add("e1", "tcp://10.0.0.7:40000", 10_000_000)
    >>> kept.where("e1")
    'tcp://10.0.0.7:40000'
"""

from __future__ import annotations

import collections
from typing import Any

__all__ = ["KeptResults"]

_REMEMBERED = 100_000
"""How many lost results the index remembers the reason for."""


class KeptResults:
    """Execution id -> the Dask worker that keeps its result (see the module docstring)."""

    def __init__(self) -> None:
        self._at: dict[str, tuple[str, int]] = {}
        self._by_worker: dict[str, set[str]] = collections.defaultdict(set)
        self._gone: collections.OrderedDict[str, str] = collections.OrderedDict()

    def add(self, eid: str, address: str, size: int) -> None:
        """The worker at ``address`` keeps the ``size`` bytes of the result of ``eid``."""
        self.remove(eid)
        self._at[eid] = (address, size)
        self._by_worker[address].add(eid)
        self._gone.pop(eid, None)

    def where(self, eid: str) -> str | None:
        """The address of the worker that keeps the result, or None."""
        found = self._at.get(eid)
        return found[0] if found else None

    def size(self, eid: str) -> int:
        """The size of a kept result (0 if unknown)."""
        found = self._at.get(eid)
        return found[1] if found else 0

    def remove(self, eid: str) -> str | None:
        """Forget the result (it was stored, or dropped); returns where it was."""
        found = self._at.pop(eid, None)
        if found is None:
            return None
        eids = self._by_worker.get(found[0])
        if eids is not None:
            eids.discard(eid)
            if not eids:
                del self._by_worker[found[0]]
        return found[0]

    def worker_lost(self, address: str, why: str) -> None:
        """The worker at ``address`` is gone, with the results it kept."""
        for eid in self._by_worker.pop(address, set()):
            self._at.pop(eid, None)
            self._gone[eid] = f"it was kept by the Dask worker {address}, which is gone ({why})"
            while len(self._gone) > _REMEMBERED:
                self._gone.popitem(last=False)

    def why_gone(self, eid: str) -> str:
        """Why the result of ``eid`` is not kept anywhere."""
        return self._gone.get(eid) or (
            "it was kept by a Dask worker that is gone (results larger than 64 KiB stay on"
            " the Dask worker that made them until a client asks for them)"
        )

    def locate_args(
        self, args: dict[str, dict[str, Any]]
    ) -> tuple[dict[str, dict[str, Any]], str | None] | str:
        """The arguments with the address of each kept result, and the worker that keeps
        the largest (preferred); or why one of them is gone."""
        if not any("held" in arg for arg in args.values()):
            return args, None  # (the common case)
        sent: dict[str, dict[str, Any]] = {}
        prefer, largest = None, -1
        for name, arg in args.items():
            if "held" not in arg:
                sent[name] = dict(arg)
                continue
            eid = str(arg["held"])
            at = self.where(eid)
            if at is None:
                return (
                    f"argument {name!r}: the result of upstream execution {eid} is no longer"
                    f" available: {self.why_gone(eid)}"
                )
            sent[name] = {"held": eid, "at": at}
            if self.size(eid) > largest:
                prefer, largest = at, self.size(eid)
        return sent, prefer
