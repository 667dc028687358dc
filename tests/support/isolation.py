"""Whether the sandbox (bubblewrap) works on this machine, for tests that need it.

Tests that need the sandbox are marked :data:`needs_sandbox`: they are skipped, with
bubblewrap's own reason, where it can't run (pytest ``-ra`` lists the reason).
:data:`ISOLATIONS` parametrizes a test over ``--isolation none`` and ``sandbox``.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import pytest

from daisi_async.server.workers.sandbox import SandboxUnavailable, choose_isolation

__all__ = ["ISOLATIONS", "needs_sandbox", "sandbox_missing"]


@functools.cache
def sandbox_missing() -> str | None:
    """Why ``daisi serve --isolation sandbox`` would refuse to start here, or None."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            choose_isolation("sandbox", root=Path(tmp), store=Path(tmp) / "store")
        except SandboxUnavailable as exc:
            return str(exc)
    return None


needs_sandbox = pytest.mark.skipif(
    sandbox_missing() is not None,
    reason=f"bubblewrap can't sandbox workers here: {sandbox_missing()}",
)
"""Skip a test where the sandbox can't run (apt-get install bubblewrap; user namespaces)."""

ISOLATIONS = [
    pytest.param("none", id="isolation-none"),
    pytest.param("sandbox", id="isolation-sandbox", marks=needs_sandbox),
]
"""Parameters over ``--isolation none`` and ``--isolation sandbox``."""
