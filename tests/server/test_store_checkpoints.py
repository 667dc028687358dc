"""WAL checkpoints run on the store's own thread, not inside the event loop's commits."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from daisi_async.server.store import Store
from daisi_async.server.store.checkpoints import BACKSTOP_PAGES, EVERY_COMMITS, IDLE_SECONDS


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate()}


def test_commits_leave_checkpoints_to_a_thread_that_keeps_up(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.open()
    try:
        # the store's connection checkpoints only as a backstop (SQLite's default: 1,000)
        assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone() == (BACKSTOP_PAGES,)
        assert "daisi-wal-checkpoints" in _threads()
        cp = store._checkpointer
        assert cp is not None and cp.checkpoints == 0
        for _ in range(EVERY_COMMITS):  # no event loop: each create commits at once
            store.create(daisi_id="d", endpoint="f", owner=None, args={"x": {"value": 1}})
        _wait_for(lambda: cp.checkpoints >= 1, "a checkpoint after enough commits")
        other = sqlite3.connect(tmp_path / "daisi.sqlite3")
        try:
            (n,) = other.execute("SELECT COUNT(*) FROM executions").fetchone()
        finally:
            other.close()
        assert n == EVERY_COMMITS
    finally:
        store.close()
    assert "daisi-wal-checkpoints" not in _threads()
    assert not (tmp_path / "daisi.sqlite3-wal").exists()  # the last close took the WAL in


def test_a_few_commits_are_checkpointed_once_the_store_is_quiet(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.open()
    try:
        cp = store._checkpointer
        assert cp is not None
        store.create(daisi_id="d", endpoint="f", owner=None, args={})  # < EVERY_COMMITS
        _wait_for(lambda: cp.checkpoints >= 1, "the checkpoint once the store is quiet")
        seen = cp.checkpoints
        time.sleep(IDLE_SECONDS * 2.5)
        assert cp.checkpoints == seen  # nothing new: no more checkpoints
    finally:
        store.close()
