"""Idempotency keys: the same key with the same request is the same execution."""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["IdempotencyMismatch", "request_fingerprint"]


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
