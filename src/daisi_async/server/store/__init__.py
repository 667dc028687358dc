"""The runtime's durable state: executions, events and blobs in SQLite plus blob files.

* :mod:`.store` — :class:`Store`, the one object the engine and routes use;
* :mod:`.writer` — grouped commits that isolate bad data and survive a failing disk;
* :mod:`.records` — what is kept (:class:`ExecutionRecord`, :class:`Event`, :class:`Blob`);
* :mod:`.schema` — the tables; :mod:`.queries` — reads of what is committed, and
  executions by idempotency key;
* :mod:`.blobs` — blob files and blob rows; :mod:`.lock` — one server per store;
* :mod:`.idempotency` — request fingerprints; :mod:`.checkpoints` — WAL checkpoints
  on a thread of their own;
* :mod:`.errors` — :class:`StorageError` and text made storable.
"""

from .blobs import INLINE_BLOB_BYTES, RESULT_PREFIX, BlobTooLarge, valid_key
from .errors import StorageError, storable_text
from .idempotency import IdempotencyMismatch, request_fingerprint
from .lock import StoreLock, StoreLockedError
from .records import Blob, Event, ExecutionRecord
from .store import STORAGE_FAILED, Listener, Store

__all__ = [
    "INLINE_BLOB_BYTES",
    "RESULT_PREFIX",
    "STORAGE_FAILED",
    "Blob",
    "BlobTooLarge",
    "Event",
    "ExecutionRecord",
    "IdempotencyMismatch",
    "Listener",
    "StorageError",
    "Store",
    "StoreLock",
    "StoreLockedError",
    "request_fingerprint",
    "storable_text",
    "valid_key",
]
