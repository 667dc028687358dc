"""Idempotency keys in the store: a request is fingerprinted only when its key comes back,
against the request its execution was made from (also after a restart)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from daisi_async.server.store import IdempotencyMismatch, Store, request_fingerprint

ARGS = {"a": {"value": 1}, "b": {"value": [1.5, "x", None, True]}}


def test_a_key_keeps_no_hash_and_comes_back_to_its_execution_after_a_restart(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path)
    store.open()
    try:
        rec = store.create(daisi_id="d", endpoint="f", owner=None, args=ARGS, idempotency=("", "k"))
        row = store.db.execute("SELECT eid, fingerprint FROM idempotency").fetchall()
        assert row == [(rec.id, "")]  # nothing hashed while creating
    finally:
        store.close()
    store = Store(tmp_path)  # a new server on the same store: the record comes from SQLite
    store.open()
    try:
        same = {"b": {"value": [1.5, "x", None, True]}, "a": {"value": 1}}  # keys reordered
        found = store.idempotent("", "k", ("d", "f", same))
        assert found is not None and found.id == rec.id
        for other in (
            ("d", "f", {"a": {"value": 2}, "b": ARGS["b"]}),
            ("d", "g", ARGS),
            ("e", "f", ARGS),
            ("d", "f", {"a": {"value": 1.0}, "b": ARGS["b"]}),  # 1.0 is not 1 in JSON
        ):
            with pytest.raises(IdempotencyMismatch):
                store.idempotent("", "k", other)
        assert store.idempotent("", "other key", ("d", "f", ARGS)) is None
    finally:
        store.close()


def test_keys_of_earlier_stores_keep_their_meaning(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.open()
    try:
        hashed = store.create(daisi_id="d", endpoint="f", owner=None, args=ARGS)
        bare = store.create(daisi_id="d", endpoint="f", owner=None, args=ARGS)
        store.db.executemany(
            "INSERT INTO idempotency (scope, key, eid, fingerprint) VALUES (?, ?, ?, ?)",
            [
                ("", "hashed", hashed.id, request_fingerprint("d", "f", ARGS)),
                ("", "bare", bare.id, None),  # before fingerprints were kept
            ],
        )
        assert store.idempotent("", "hashed", ("d", "f", ARGS)) is hashed
        with pytest.raises(IdempotencyMismatch):
            store.idempotent("", "hashed", ("d", "f", {}))
        assert store.idempotent("", "bare", ("x", "y", {})) is bare  # matches any request
    finally:
        store.close()


def test_the_stored_keys_of_a_slice_are_found_in_one_query_each_500(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.open()
    try:
        made = {f"k{i}" for i in range(0, 1200, 2)}
        for key in sorted(made):
            store.create(daisi_id="d", endpoint="f", owner=None, args={}, idempotency=("", key))
        store.create(daisi_id="d", endpoint="f", owner="bob", args={}, idempotency=("bob", "k1"))
        store.flush()
        asked = [f"k{i}" for i in range(1200)] + ["k0"]  # (a key twice is asked once)
        queries: list[str] = []
        store.db.set_trace_callback(queries.append)
        assert store.stored_keys("", asked) == made
        assert store.stored_keys("bob", ["k0", "k1"]) == {"k1"}  # keys are per scope
        assert store.stored_keys("", []) == set()
        store.db.set_trace_callback(None)
        assert len(queries) == 3 + 1  # 1,200 keys: 3 queries; bob's: 1; none: none
    finally:
        store.close()


def test_a_key_known_not_stored_is_still_found_while_its_creation_is_uncommitted(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path)
    store.open()
    queries: list[str] = []

    async def main() -> None:
        rec = store.create(daisi_id="d", endpoint="f", owner=None, args=ARGS, idempotency=("", "k"))
        store.db.set_trace_callback(queries.append)
        found = store.idempotent("", "k", ("d", "f", ARGS), stored=False)  # not committed
        assert found is rec
        assert store.idempotent("", "other", ("d", "f", ARGS), stored=False) is None
        store.db.set_trace_callback(None)
        await store.commit()

    try:
        asyncio.run(main())
        assert queries == []  # neither asked SQLite
    finally:
        store.close()
