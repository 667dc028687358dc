"""Shared fixtures: real runtime processes and the anyio backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daisi_async.testing import LocalRuntime, daisi_runtime

__all__ = ["daisi_runtime"]  # the session fixture serving examples/daisies

TEST_DAISIES = Path(__file__).parent / "daisies"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Async tests run on both asyncio and trio."""
    return str(request.param)


@pytest.fixture(scope="session")
def echo_runtime() -> Iterator[LocalRuntime]:
    """A runtime serving the test-only Daisies of tests/daisies (Echo)."""
    with LocalRuntime(TEST_DAISIES, extra_args=["--max-workers", "4"]) as rt:
        yield rt
