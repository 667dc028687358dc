"""What the store writes per execution, on a real SQLite file: a creation and the
worker taking it at once are one INSERT in one transaction; a status change is its
execution row's own change (only log lines are rows of ``events``), and the events read
back are the ones shown live; ids that grow with time, so that every index keyed by them
grows at its end."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from daisi_async._wire import ExecutionStatus
from daisi_async.server.store import Event, ExecutionRecord, Store


def test_a_run_that_starts_at_once_is_inserted_running_in_the_creation_commit(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path)
    store.open()
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)
    seen: list[tuple[str, int]] = []

    def on_event(rec: ExecutionRecord, ev: Event | None) -> None:
        assert ev is not None
        seen.append((ev.data, ev.seq))

    async def main() -> ExecutionRecord:
        rec = store.create(daisi_id="d", endpoint="f", owner=None, args={})
        store.listen_all(on_event)
        await asyncio.sleep(0)  # the execution's task runs the turn after its submission
        store.start(rec)
        assert store.get(rec.id) is None  # nothing shown before it is committed
        await store.commit()
        return rec

    try:
        rec = asyncio.run(main())
        writes = [s.split(" (")[0] for s in statements if not s.startswith("SELECT")]
        assert writes == ["BEGIN", "INSERT INTO executions", "COMMIT"]
        assert seen == [("QUEUED", 1), ("RUNNING", 2)]
        assert store.get(rec.id) is rec
        assert (rec.status, rec.seq) == (ExecutionStatus.RUNNING, 2)
        assert rec.started_at is not None
        row = store.db.execute(
            "SELECT status, started_at, seq FROM executions WHERE id = ?", (rec.id,)
        ).fetchone()
        assert row == ("RUNNING", rec.started_at, 2)
        assert [(e.data, e.seq) for e in store.events(rec.id)] == [("QUEUED", 1), ("RUNNING", 2)]

        statements.clear()
        store.finish(rec, ExecutionStatus.FINISHED, result_json="3")
        store.flush()
        writes = [" ".join(s.split()[:2]) for s in statements if not s.startswith("SELECT")]
        assert writes == ["BEGIN", "UPDATE executions", "COMMIT"]
        assert rec.status is ExecutionStatus.FINISHED
        assert [e.data for e in store.events(rec.id)] == ["QUEUED", "RUNNING", "FINISHED"]
    finally:
        store.close()


def test_execution_ids_are_uuids_that_sort_by_creation_time(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.open()
    try:
        made = []
        for _ in range(3):
            made.append(store.create(daisi_id="d", endpoint="f", owner=None, args={}).id)
            time.sleep(0.003)  # the time part counts milliseconds
        store.flush()
        assert made == sorted(made)  # indexes keyed by id grow at their end
        assert {uuid.UUID(eid).version for eid in made} == {7}
        assert len({eid[-12:] for eid in made}) == 3  # and their random part differs
        assert [store.get(eid) is not None for eid in made] == [True] * 3
    finally:
        store.close()


def _live_and_stored(
    tmp_path: Path, run: Callable[[Store, ExecutionRecord], None]
) -> tuple[list[Event], list[Event], ExecutionRecord]:
    """The events listeners saw while ``run`` drove a new execution, and those read back
    from the store afterwards (by a new store on the same files: nothing cached)."""
    store = Store(tmp_path)
    store.open()
    live: list[Event] = []

    async def main() -> ExecutionRecord:
        store.listen_all(lambda _rec, ev: live.append(ev) if ev is not None else None)
        rec = store.create(daisi_id="d", endpoint="f", owner=None, args={})
        await store.commit()
        run(store, rec)
        await store.commit()
        return rec

    try:
        rec = asyncio.run(main())
    finally:
        store.close()
    again = Store(tmp_path)
    again.open()
    try:
        return live, again.events(rec.id), rec
    finally:
        again.close()


def test_a_run_with_logs_reads_back_the_events_it_showed_live(tmp_path: Path) -> None:
    def run(store: Store, rec: ExecutionRecord) -> None:
        store.start(rec)
        store.log(rec, "stdout", "one")
        store.log(rec, "stderr", "two")
        store.finish(rec, ExecutionStatus.FAILED, error={"type": "E", "message": "m"})

    live, stored, rec = _live_and_stored(tmp_path, run)
    assert [(e.seq, e.kind, e.data, e.stream) for e in stored] == [
        (1, "status", "QUEUED", None),
        (2, "status", "RUNNING", None),
        (3, "log", "one", "stdout"),
        (4, "log", "two", "stderr"),
        (5, "status", "FAILED", None),
    ]
    assert stored == live  # the same seq, data and time, live or read back
    assert [e.time for e in stored if e.kind == "status"] == [
        rec.created_at,
        rec.started_at,
        rec.finished_at,
    ]


def test_an_end_queued_behind_its_start_is_one_update_with_it(tmp_path: Path) -> None:
    """A quick run's start and end, both waiting for the same commit, are one UPDATE;
    listeners still see RUNNING, then FINISHED, only once committed."""
    statements: list[str] = []

    def run(store: Store, rec: ExecutionRecord) -> None:
        store.db.set_trace_callback(statements.append)
        store.start(rec)
        store.finish(rec, ExecutionStatus.FINISHED, result_json="3")
        assert (rec.status, rec.started_at) == (ExecutionStatus.QUEUED, None)  # not yet

    live, stored, rec = _live_and_stored(tmp_path, run)
    writes = [" ".join(s.split()[:2]) for s in statements if not s.startswith("SELECT")]
    assert writes == ["BEGIN", "UPDATE executions", "COMMIT"]
    assert [(e.seq, e.data) for e in stored] == [(1, "QUEUED"), (2, "RUNNING"), (3, "FINISHED")]
    assert stored == live
    assert rec.started_at is not None and rec.finished_at is not None
    assert rec.started_at <= rec.finished_at
    assert (rec.status, rec.result_json) == (ExecutionStatus.FINISHED, "3")


def test_a_log_line_between_start_and_end_keeps_them_apart(tmp_path: Path) -> None:
    """Folded, the end would be shown before the log line: it is not folded."""
    statements: list[str] = []

    def run(store: Store, rec: ExecutionRecord) -> None:
        store.db.set_trace_callback(statements.append)
        store.start(rec)
        store.log(rec, "stdout", "between")
        store.finish(rec, ExecutionStatus.FINISHED, result_json="3")

    live, stored, _rec = _live_and_stored(tmp_path, run)
    updates = [s for s in statements if s.startswith("UPDATE executions SET status")]
    assert len(updates) == 2
    assert [(e.seq, e.data) for e in stored] == [
        (1, "QUEUED"),
        (2, "RUNNING"),
        (3, "between"),
        (4, "FINISHED"),
    ]
    assert stored == live


def test_a_run_cancelled_while_queued_ends_at_seq_2(tmp_path: Path) -> None:
    def run(store: Store, rec: ExecutionRecord) -> None:
        store.finish(rec, ExecutionStatus.CANCELLED)

    live, stored, _rec = _live_and_stored(tmp_path, run)
    assert [(e.seq, e.data) for e in stored] == [(1, "QUEUED"), (2, "CANCELLED")]
    assert stored == live


def test_events_after_a_seq_of_one_kind_and_limited(tmp_path: Path) -> None:
    def run(store: Store, rec: ExecutionRecord) -> None:
        store.start(rec)
        for i in range(3):
            store.log(rec, "stdout", f"line {i}")
        store.finish(rec, ExecutionStatus.FINISHED, result_json="1")

    store = Store(tmp_path)
    _live, stored, rec = _live_and_stored(tmp_path, run)
    store.open()
    try:
        assert [e.seq for e in store.events(rec.id, after=2)] == [3, 4, 5, 6]
        assert [e.seq for e in store.events(rec.id, kind="status")] == [1, 2, 6]
        assert [e.data for e in store.events(rec.id, kind="log", limit=2)] == ["line 0", "line 1"]
        assert [e.seq for e in store.events(rec.id, after=1, limit=2)] == [2, 3]
        assert store.events(rec.id, after=6) == []
        assert [e.seq for e in stored] == [1, 2, 3, 4, 5, 6]
    finally:
        store.close()


def test_status_rows_of_an_earlier_store_are_listed_once(tmp_path: Path) -> None:
    def run(store: Store, rec: ExecutionRecord) -> None:
        store.start(rec)
        store.finish(rec, ExecutionStatus.FINISHED, result_json="1")

    _live, before, rec = _live_and_stored(tmp_path, run)
    store = Store(tmp_path)
    store.open()
    try:  # an earlier version also wrote each status change as a row of events
        store.db.executemany(
            "INSERT INTO events (eid, seq, kind, stream, data, time) VALUES (?, ?, ?, ?, ?, ?)",
            [(rec.id, e.seq, e.kind, e.stream, e.data, e.time) for e in before],
        )
        assert store.events(rec.id) == before
        assert store.events(rec.id, kind="status") == before
    finally:
        store.close()


def _finish_with(tmp_path: Path, data: bytes) -> tuple[list[str], ExecutionRecord, Store]:
    """A run ended with the result ``data`` (held in memory); the statements it wrote."""
    store = Store(tmp_path)
    store.open()
    statements: list[str] = []

    async def main() -> ExecutionRecord:
        rec = store.create(daisi_id="d", endpoint="f", owner="al", args={})
        await store.commit()
        store.start(rec)
        await store.commit()
        store.db.set_trace_callback(statements.append)
        store.finish(rec, ExecutionStatus.FINISHED, result=store.result_blob(f"r-{rec.id}", data))
        await store.commit()
        return rec

    return statements, asyncio.run(main()), store


def test_a_small_result_lives_in_its_execution_row(tmp_path: Path) -> None:
    data = b"\x80\x05K\x03."  # pickle of 3
    statements, rec, store = _finish_with(tmp_path, data)
    try:
        writes = [" ".join(s.split()[:3]) for s in statements if not s.startswith("SELECT")]
        assert writes == ["BEGIN", "UPDATE executions SET", "COMMIT"]  # no row of blobs
        blob = store.get_blob(f"r-{rec.id}")
        assert blob is not None
        assert (blob.data, blob.size, blob.owner, blob.path) == (data, len(data), "al", None)
        assert rec.result_key == f"r-{rec.id}" and rec.result_size == len(data)
        assert store.get_blob(f"r-{new_id_like(rec.id)}") is None  # another id: nothing
    finally:
        store.close()
    again = Store(tmp_path)  # read back from the file by a new store
    again.open()
    try:
        blob = again.get_blob(f"r-{rec.id}")
        assert blob is not None and blob.data == data
    finally:
        again.close()


def test_a_larger_result_is_a_row_of_blobs(tmp_path: Path) -> None:
    data = bytes(range(256)) * 8  # 2 KB: past ROW_RESULT_BYTES
    statements, rec, store = _finish_with(tmp_path, data)
    try:
        assert any(s.startswith("INSERT OR REPLACE INTO blobs") for s in statements)
        blob = store.get_blob(f"r-{rec.id}")
        assert blob is not None and (blob.data, blob.owner) == (data, "al")
    finally:
        store.close()


def test_a_store_made_before_results_lived_in_rows_opens_and_keeps_its_results(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path)
    store.open()
    old = store.create(daisi_id="d", endpoint="f", owner=None, args={})
    store.flush()
    store.db.execute("ALTER TABLE executions DROP COLUMN result_data")  # as an older store
    store.close()
    again = Store(tmp_path)
    again.open()
    try:
        assert again.get(old.id) is not None
        columns = {row[1] for row in again.db.execute("PRAGMA table_info(executions)")}
        assert "result_data" in columns
    finally:
        again.close()


def new_id_like(eid: str) -> str:
    """An id of the same form that no execution has."""
    return eid[:-4] + ("0000" if not eid.endswith("0000") else "1111")
