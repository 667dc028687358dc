"""The store's cache of execution records: bounded, and cheap to keep bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from daisi_async._wire import ExecutionStatus
from daisi_async.server.store import ExecutionRecord, Store
from daisi_async.server.store import store as store_module

LIMIT = 100


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setattr(store_module, "_CACHE_TERMINAL", LIMIT)
    opened = Store(tmp_path)
    opened.open()
    yield opened
    opened.close()


def create(store: Store, n: int) -> list[ExecutionRecord]:
    return [store.create(daisi_id="d", endpoint="f", owner=None, args={}) for _ in range(n)]


class Looks:
    """Counts the looks at the writes waiting to be committed."""

    def __init__(self, store: Store) -> None:
        self.count = 0
        self._real = store._writer.pending_ids
        store._writer.pending_ids = self  # type: ignore[method-assign]

    def __call__(self) -> set[str | None]:
        self.count += 1
        return self._real()


def test_the_oldest_finished_records_are_forgotten_and_read_back(store: Store) -> None:
    async def main() -> None:
        done = create(store, LIMIT)
        for rec in done:
            store.finish(rec, ExecutionStatus.FINISHED, result=("k", b"1", 1))
        await store.commit()
        running = create(store, 20)
        await store.commit()
        cached = set(store._records)
        assert len(cached) <= LIMIT + LIMIT // 10
        assert {r.id for r in running} <= cached  # never a record in flight
        forgotten = [r for r in done if r.id not in cached]
        assert forgotten
        again = store.get(forgotten[0].id)  # read back from the database
        assert again is not None and again.status is ExecutionStatus.FINISHED

    asyncio.run(main())


def test_a_full_cache_of_running_records_is_not_scanned_per_record(store: Store) -> None:
    # A fan-out larger than the cache: nothing can be forgotten. Each pass looks at
    # the pending writes once, and the next pass waits for a tenth of the cache more.
    async def main() -> None:
        create(store, LIMIT)
        looks = Looks(store)
        create(store, 100)
        assert looks.count <= 100 // (LIMIT // 10) + 1
        await store.commit()

    asyncio.run(main())
