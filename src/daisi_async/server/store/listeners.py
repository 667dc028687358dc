"""Who hears of an execution's committed events (a part of the store)."""

from __future__ import annotations

from collections.abc import Callable

from .records import Event, ExecutionRecord

__all__ = ["Listener", "Listeners"]

Listener = Callable[[ExecutionRecord, Event | None], None]
"""Called after each committed event of an execution; with ``None`` when the storage
failed to commit the execution's latest changes (they are retried)."""


class Listeners:
    """The listeners of executions' events (a part of :class:`~.store.Store`)."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}
        self._global_listeners: list[Listener] = []

    def _notify(self, rec: ExecutionRecord, ev: Event | None) -> None:
        for listener in list(self._listeners.get(rec.id, ())):
            listener(rec, ev)
        for listener in list(self._global_listeners):
            listener(rec, ev)

    def listen(self, eid: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` after every committed event of ``eid``; returns the
        unsubscribe function."""
        self._listeners.setdefault(eid, []).append(listener)

        def remove() -> None:
            lst = self._listeners.get(eid)
            if lst and listener in lst:
                lst.remove(listener)
                if not lst:
                    del self._listeners[eid]

        return remove

    def listen_all(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` after every committed event of every execution (the live
        feed, metrics); returns the unsubscribe function."""
        self._global_listeners.append(listener)

        def remove() -> None:
            if listener in self._global_listeners:
                self._global_listeners.remove(listener)

        return remove
