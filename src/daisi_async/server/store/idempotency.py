"""Idempotency keys: the same key with the same request is the same execution.

A key's row keeps ``""`` as its fingerprint: "the fingerprint of its execution's own
request", worked out only if the key comes back (:func:`check_request`), so a
submission hashes nothing. Rows of earlier versions keep the fingerprint itself, or
NULL (made before fingerprints were kept: such a key matches any request).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

from .records import ExecutionRecord

__all__ = ["IdempotencyMethods", "IdempotencyMismatch", "check_request", "request_fingerprint"]

Request = tuple[str, str, dict[str, Any]]
"""``(daisi_id, endpoint, args)``."""


class IdempotencyMismatch(Exception):
    """An idempotency key came back with a different request than the first time."""

    def __init__(self, eid: str) -> None:
        super().__init__(f"the key was first used for execution {eid}")
        self.eid = eid


def request_fingerprint(daisi_id: str, endpoint: str, args: dict[str, dict[str, Any]]) -> str:
    """The SHA-256 of a submission's canonical JSON: equal requests, equal fingerprints.

    Example:
        >>> request_fingerprint("d", "f", {}) == request_fingerprint("d", "f", {})
        True
    """
    canonical = _canonical([daisi_id, endpoint, args])
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode


def check_request(kept: str | None, earlier: Request, request: Request, eid: str) -> None:
    """Raise :class:`IdempotencyMismatch` unless ``request`` is the ``earlier`` one that
    made execution ``eid``; ``kept`` is the fingerprint kept with the key (see the
    module docstring).

    Example:
        >>> check_request("", ("d", "f", {"a": {"value": 1}}), ("d", "f", {"a": {"value": 1}}), "x")
    """
    if kept is None:
        return
    if request_fingerprint(*request) != (kept or request_fingerprint(*earlier)):
        raise IdempotencyMismatch(eid)


class IdempotencyMethods:
    """Finding executions by their idempotency keys (a part of :class:`~.store.Store`)."""

    _idempotency: dict[tuple[str, str], str]  # keys of uncommitted creations -> their id
    _records: dict[str, ExecutionRecord]

    @property
    def db(self) -> sqlite3.Connection:  # provided by the store
        raise NotImplementedError

    def get(self, eid: str) -> ExecutionRecord | None:  # provided by the store
        raise NotImplementedError

    def idempotent(
        self, scope: str, key: str, request: Request | None = None
    ) -> ExecutionRecord | None:
        """The execution created earlier with this idempotency key, if any.

        Raises :class:`IdempotencyMismatch` when ``request`` (``(daisi_id, endpoint,
        args)``) is not the one that made it (see :func:`check_request`).
        """
        kept: str | None = ""  # (a key kept bare)
        if (eid := self._idempotency.get((scope, key))) is not None:  # not yet committed
            rec = self._records.get(eid)
        else:
            row = self.db.execute(
                "SELECT eid, fingerprint FROM idempotency WHERE scope = ? AND key = ?",
                (scope, key),
            ).fetchone()
            if row is None:
                return None
            eid, kept = row
            rec = self.get(eid)
        if request is not None and rec is not None:
            check_request(kept, (rec.daisi_id, rec.endpoint, rec.args), request, eid)
        return rec
