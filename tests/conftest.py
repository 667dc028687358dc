"""Shared fixtures: a real runtime process (``daisi_runtime``) and the anyio backends."""

from __future__ import annotations

import pytest

pytest_plugins = ["daisi_async.testing"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Async tests run on both asyncio and trio."""
    return str(request.param)
