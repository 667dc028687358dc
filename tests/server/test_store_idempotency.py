"""Idempotency keys in the store: a request is fingerprinted only when its key comes back,
against the request its execution was made from (also after a restart)."""

from __future__ import annotations

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
