"""Fixtures shared by the runtime's HTTP tests: a runtime per module and a raw client.

A module that needs another runtime (tokens, test-only Daisies, limits) defines its own
``runtime`` fixture; ``client`` then talks to that one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from daisi_async.testing import LocalRuntime

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "daisies"


@pytest.fixture(scope="module")
def runtime() -> Iterator[LocalRuntime]:
    """A runtime serving examples/daisies for one test module."""
    with LocalRuntime(EXAMPLES) as rt:
        yield rt


@pytest.fixture(scope="module")
def client(runtime: LocalRuntime) -> Iterator[httpx.Client]:
    """Raw httpx on the module's runtime (base URL ``.../pebble-api``)."""
    with httpx.Client(base_url=runtime.api, timeout=60) as c:
        yield c
