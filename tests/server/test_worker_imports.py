"""What a warm worker imports: only what it needs (its idle memory is a target, ≤ 30 MB).

The worker program lives inside the ``daisi_async`` package, whose ``__init__`` is lazy:
a worker must load neither the client stack (httpx, anyio, tenacity) nor the server's
(starlette, uvicorn, the pool), nor asyncio unless an endpoint is a coroutine.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import httpx
import pytest

from daisi_async.testing import LocalRuntime

APP = '''
import sys


def modules() -> list:
    """The names of the modules loaded in this worker."""
    return sorted(sys.modules)


async def modules_async() -> list:
    """The same, from a coroutine endpoint (the worker then needs asyncio)."""
    return sorted(sys.modules)


async def boom() -> None:
    """Raise from a coroutine endpoint."""
    raise ValueError("async boom")
'''

NEVER = (
    "httpx",
    "httpcore",
    "httpx_sse",
    "anyio",
    "tenacity",
    "click",
    "starlette",
    "uvicorn",
    "jinja2",
    "numpy",
    "daisi_async._daisi",
    "daisi_async._sync",
    "daisi_async.server.app",
    "daisi_async.server.engine",
    "daisi_async.server.workers.pool",
)
"""Modules a worker of a Daisi that imports only ``sys`` must not load."""

NOT_IDLE = ("asyncio", "ssl", *NEVER)
"""Also kept out until a coroutine endpoint runs."""


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    folder = tmp_path_factory.mktemp("imports") / "modules"
    folder.mkdir()
    (folder / "app.py").write_text(textwrap.dedent(APP))
    with LocalRuntime(folder.parent, workers=1) as rt:
        yield rt


def _call(client: httpx.Client, endpoint: str) -> dict[str, object]:
    did = client.get("/v1/daisies").json()["daisies"][0]["id"]
    r = client.post(
        f"/v1/daisies/{did}/executions",
        params={"wait": 60},
        json={"endpoint": endpoint, "arguments": {}},
    )
    assert r.status_code == 201, r.text
    execution: dict[str, object] = r.json()
    return execution


def test_an_idle_worker_loads_no_client_server_or_asyncio(client: httpx.Client) -> None:
    execution = _call(client, "modules")
    assert execution["status"] == "FINISHED", execution
    loaded = set(execution["result"]["value"])  # type: ignore[index]
    assert "daisi_async.server.workers.program.main" in loaded  # the list is the worker's
    assert "dill" in loaded
    assert sorted(loaded & set(NOT_IDLE)) == []


def test_a_coroutine_endpoint_loads_asyncio_and_still_not_the_rest(client: httpx.Client) -> None:
    execution = _call(client, "modules_async")
    assert execution["status"] == "FINISHED", execution
    loaded = set(execution["result"]["value"])  # type: ignore[index]
    assert "asyncio" in loaded
    assert sorted(loaded & set(NEVER)) == []
    # and the next plain call on the same worker still works
    assert _call(client, "modules")["status"] == "FINISHED"


def test_a_coroutine_endpoints_traceback_starts_at_the_daisi(client: httpx.Client) -> None:
    execution = _call(client, "boom")
    assert execution["status"] == "FAILED", execution
    text = str(execution["error"])
    assert "async boom" in text
    assert "app.py" in text
    assert "asyncio" not in text  # the frames of asyncio.run are left out


def test_importing_the_worker_program_is_light() -> None:
    code = (
        "import sys, daisi_async, daisi_async.server.workers.program.main\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert "daisi_async.server.workers.program.main" in out
    assert sorted(set(out) & set(NOT_IDLE)) == []
