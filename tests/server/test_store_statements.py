"""What the store writes per execution, on a real SQLite file: a creation and the
worker taking it at once are one INSERT (with both status events) in one transaction;
ids that grow with time, so that every index keyed by them grows at its end."""

from __future__ import annotations

import asyncio
import time
import uuid
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
        assert writes == [
            "BEGIN",
            "INSERT INTO executions",
            "INSERT INTO events",
            "INSERT INTO events",
            "COMMIT",
        ]
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
