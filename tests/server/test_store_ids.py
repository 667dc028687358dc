"""Execution ids: version-7 UUIDs in their canonical text, growing with time."""

from __future__ import annotations

import time
import uuid

from daisi_async.server.store.ids import new_id


def test_ids_are_canonical_version_7_uuids_that_grow_with_time() -> None:
    ids = []
    for _ in range(200):
        ids.append(new_id())
        time.sleep(0.0005)
    for text in ids:
        u = uuid.UUID(text)
        assert str(u) == text  # the canonical lower-case text, dashes in place
        assert u.version == 7 and u.variant == uuid.RFC_4122
        assert abs(int(text[:8] + text[9:13], 16) - time.time() * 1000) < 60_000  # ms stamp
    stamps = [i[:13] for i in ids]
    assert stamps == sorted(stamps) and len(set(stamps)) > 1
    assert len(set(ids)) == len(ids)
