"""Idempotency keys: the same key with the same request is the same execution.

A key's row keeps ``""`` as its fingerprint: "the fingerprint of its execution's own
request", worked out only if the key comes back (:func:`check_request`), so a
submission hashes nothing. Rows of earlier versions keep the fingerprint itself, or
NULL (made before fingerprints were kept: such a key matches any request).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["IdempotencyMismatch", "Request", "check_request", "request_fingerprint"]

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
