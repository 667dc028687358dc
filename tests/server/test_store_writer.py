"""The store's grouped commits, on a real SQLite file: isolation of bad data, a failing
disk, and nothing made visible before it is committed."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from daisi_async.server.store import StorageError
from daisi_async.server.store.writer import MAX_COMMIT_OPS, GroupWriter, Op


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(tmp_path / "t.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (eid TEXT, n INTEGER, PRIMARY KEY (eid, n))")
    yield conn
    conn.close()


def rows(db: sqlite3.Connection) -> list[tuple[str, int]]:
    return sorted(db.execute("SELECT eid, n FROM t").fetchall())


def insert(eid: str, n: int, seen: list[str], **kwargs: object) -> Op:
    return Op(
        eid,
        [("INSERT INTO t VALUES (?, ?)", (eid, n))],
        lambda: seen.append(f"{eid}{n}"),
        **kwargs,  # type: ignore[arg-type]
    )


def test_bad_data_fails_only_its_own_execution(db: sqlite3.Connection) -> None:
    bad: list[str] = []
    seen: list[str] = []
    db.execute("INSERT INTO t VALUES ('b', 2)")  # b's second insert will collide
    writer = GroupWriter(lambda: db, on_data_error=lambda e, x: bad.append(e),
                         on_storage_error=lambda ops, err: None)  # fmt: skip

    async def main() -> None:
        for op in (insert("a", 1, seen), insert("b", 1, seen), insert("b", 2, seen),
                   insert("c", 1, seen)):  # fmt: skip
            writer.add(op)
        await writer.commit()

    asyncio.run(main())
    assert bad == ["b"]
    assert rows(db) == [("a", 1), ("b", 2), ("c", 1)]  # b's other write rolled back too
    assert seen == ["a1", "c1"]  # only committed changes became visible
    assert writer.failure is None


def test_failing_storage_answers_keeps_progress_and_resumes(db: sqlite3.Connection) -> None:
    seen: list[str] = []
    dropped: list[str] = []
    told: list[set[str | None]] = []
    writer = GroupWriter(
        lambda: db,
        on_data_error=lambda e, x: None,
        on_storage_error=lambda ops, err: told.append({op.eid for op in ops}),
    )

    async def main() -> None:
        db.execute("PRAGMA query_only = 1")  # every write now fails: a read-only store
        writer.add(insert("a", 1, seen))  # progress of an accepted execution: kept
        writer.add(insert("new", 1, seen, droppable=True,
                          on_dropped=lambda exc: dropped.append("new")))  # fmt: skip
        with pytest.raises(StorageError) as info:
            await asyncio.wait_for(writer.commit(), 5)
        assert info.value.status == 503 and info.value.code == "storage_error"
        assert writer.failure is not None
        assert seen == [] and dropped == ["new"]
        assert told and all(eids == {"a"} for eids in told)
        db.execute("PRAGMA query_only = 0")  # the disk works again
        for _ in range(200):  # the retry timer commits what was kept, by itself
            if seen:
                break
            await asyncio.sleep(0.02)

    asyncio.run(main())
    assert seen == ["a1"]
    assert rows(db) == [("a", 1)]
    assert writer.failure is None


@pytest.mark.parametrize(("window", "commits"), [(0.0, 5), (0.5, 1)])
def test_a_commit_window_gathers_the_changes_of_many_loop_turns(
    db: sqlite3.Connection, window: float, commits: int
) -> None:
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    seen: list[str] = []
    writer = GroupWriter(lambda: db, on_data_error=lambda e, x: None,
                         on_storage_error=lambda ops, err: None)  # fmt: skip
    writer.window = lambda: window

    async def main() -> None:
        for n in range(5):  # one change every few turns of the loop
            writer.add(insert("a", n, seen))
            for _ in range(3):
                await asyncio.sleep(0)
        await writer.commit()

    asyncio.run(main())
    assert statements.count("COMMIT") == commits
    assert rows(db) == [("a", n) for n in range(5)] and seen == [f"a{n}" for n in range(5)]


def test_a_large_group_is_committed_in_parts_one_per_loop_turn(db: sqlite3.Connection) -> None:
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    seen: list[str] = []
    writer = GroupWriter(lambda: db, on_data_error=lambda e, x: None,
                         on_storage_error=lambda ops, err: None)  # fmt: skip
    half = MAX_COMMIT_OPS + MAX_COMMIT_OPS // 5  # 600: the first waiter's ops end in part 2
    answered: dict[str, int] = {}  # waiter: COMMITs made when it was answered

    async def wait(name: str) -> None:
        await writer.commit()
        answered[name] = statements.count("COMMIT")

    async def main() -> None:
        waiters = []
        for name in ("first", "second"):
            for i in range(half):
                writer.add(insert(name, i, seen))
            waiters.append(asyncio.ensure_future(wait(name)))
            await asyncio.sleep(0)  # the waiter asks now, before the next ops
        await asyncio.gather(*waiters)

    asyncio.run(main())
    assert statements.count("COMMIT") == 3  # 500 + 500 + 200 ops, one part per turn
    assert answered == {"first": 2, "second": 3}  # each once its own ops are committed
    assert seen == [f"first{i}" for i in range(half)] + [f"second{i}" for i in range(half)]
