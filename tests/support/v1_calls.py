"""Raw v1 calls shared by the server tests: submit an execution, wait for its end; and
how many executions a runtime's store holds.

Example:
    >>> end = call(client, daisi_id, "compute", firstNumber=1, secondNumber=2)  # doctest: +SKIP
"""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx

from daisi_async.testing import LocalRuntime

__all__ = ["call", "count_executions", "submit", "wait"]


def count_executions(runtime: LocalRuntime) -> int:
    """Rows in the ``executions`` table of ``runtime``'s store (read-only)."""
    db = sqlite3.connect(f"file:{runtime.store / 'daisi.sqlite3'}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT COUNT(*) FROM executions").fetchone()[0])
    finally:
        db.close()


def submit(
    client: httpx.Client,
    did: str,
    endpoint: str,
    *,
    headers: dict[str, str] | None = None,
    **args: Any,
) -> str:
    """Create an execution (arguments as JSON values); its id."""
    body = {"endpoint": endpoint, "arguments": {k: {"value": v} for k, v in args.items()}}
    r = client.post(f"/v1/daisies/{did}/executions", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def wait(
    client: httpx.Client,
    eid: str,
    timeout: float = 60,
    *,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The execution once it has ended (asserts that it did within ``timeout`` s)."""
    r = client.get(f"/v1/executions/{eid}", params={"wait": timeout}, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] in ("FINISHED", "FAILED", "CANCELLED"), body
    return body


def call(
    client: httpx.Client,
    did: str,
    endpoint: str,
    *,
    headers: dict[str, str] | None = None,
    **args: Any,
) -> dict[str, Any]:
    """Submit and wait (``headers`` on both requests)."""
    return wait(client, submit(client, did, endpoint, headers=headers, **args), headers=headers)
