"""Daisi folders laid out as real Daisies have them, served by a real runtime over HTTP.

The registry's unit tests (test_registry*.py) check the rules on folders; these check
that what the registry chose is what a worker imports and runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.daisi_folders import make_daisi

from daisi_async.testing import LocalRuntime

MODEL = '''
"""Doubles numbers."""

from weights import FACTOR


def predict(x: float) -> float:
    """Predict.

    Args:
        x: The input.
    """
    return x * FACTOR
'''

CLIENT_SCRIPT = """
import pydaisi as pyd

daisi = pyd.Daisi("local/Model Beside Client")

if __name__ == "__main__":
    print(daisi.predict(x=2).value)
"""

SUB_ENTRY = """
import helper                  # a sibling of the entry module, in src/
from pkg.mod import triple     # a package beside the entry module, in src/pkg/
from shared.util import offset # a package at the Daisi's root


def compute(x: int) -> int:
    return helper.double(triple(x)) + offset()
"""


@pytest.fixture(scope="module")
def daisies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("real-layouts")
    make_daisi(
        root,
        "model-beside-client",
        {
            "model.py": MODEL,
            "weights.py": "FACTOR = 2\n",
            "run.py": CLIENT_SCRIPT,
            "readme.md": "# Model beside its client script\n",
        },
    )
    make_daisi(
        root,
        "sub-entry",
        {
            "daisi.toml": 'name = "Sub Entry"\nentry = "src/app.py"\n',
            "src/app.py": SUB_ENTRY,
            "src/helper.py": "def double(x):\n    return 2 * x\n",
            "src/pkg/__init__.py": "",
            "src/pkg/mod.py": "def triple(x):\n    return 3 * x\n",
            "shared/util.py": "def offset():\n    return 1\n",
        },
    )
    make_daisi(
        root,
        "listed-not-installed",
        {
            "app.py": "def ping() -> str:\n    return 'pong'\n",
            "requirements.txt": b"\xff\xfe" + "sklearn\r\n".encode("utf-16-le"),
        },
    )
    return root


@pytest.fixture(scope="module")
def runtime(daisies: Path) -> Iterator[LocalRuntime]:
    # --shared-env: the registry's reading of requirements.txt, with the server's packages
    # (each Daisi's own environment is tested in test_envs.py).
    with LocalRuntime(daisies, extra_args=["--shared-env"]) as rt:
        yield rt


@pytest.fixture(scope="module")
def listing(client: httpx.Client) -> dict[str, dict[str, Any]]:
    r = client.get("/v1/daisies")
    assert r.status_code == 200, r.text
    return {d["name"]: d for d in r.json()["daisies"]}


def run(client: httpx.Client, daisi_id: str, endpoint: str, **args: Any) -> dict[str, Any]:
    body = {"endpoint": endpoint, "arguments": {k: {"value": v} for k, v in args.items()}}
    r = client.post(f"/v1/daisies/{daisi_id}/executions", params={"wait": 60}, json=body)
    assert r.status_code == 201, r.text
    execution: dict[str, Any] = r.json()
    if execution["status"] not in ("FINISHED", "FAILED", "CANCELLED"):
        r = client.get(f"/v1/executions/{execution['id']}", params={"wait": 60})
        assert r.status_code == 200, r.text
        execution = r.json()
    return execution


def test_model_beside_a_client_script_is_served(
    client: httpx.Client, listing: dict[str, dict[str, Any]]
) -> None:
    daisi = listing["model-beside-client"]
    assert daisi["broken"] is None
    assert daisi["description"] == "# Model beside its client script"
    [endpoint] = daisi["endpoints"]
    assert endpoint["name"] == "predict"
    assert endpoint["schema"][0]["description"] == "The input."
    execution = run(client, daisi["id"], "predict", x=21)
    assert execution["status"] == "FINISHED", execution
    assert (execution["result"]["encoding"], execution["result"]["value"]) == ("json", 42)


def test_the_client_script_is_not_served(
    client: httpx.Client, listing: dict[str, dict[str, Any]]
) -> None:
    daisi = listing["model-beside-client"]
    r = client.post(
        f"/v1/daisies/{daisi['id']}/executions", json={"endpoint": "daisi", "arguments": {}}
    )
    assert r.status_code == 404, r.text
    error = r.json()["error"]
    assert (error["status"], error["code"]) == (404, "not_found")
    assert error["message"] == "Daisi 'local/model-beside-client' has no endpoint 'daisi'"
    assert run(client, daisi["id"], "predict", x=1)["result"]["value"] == 2


def test_missing_requirement_is_served_and_reported(
    client: httpx.Client, listing: dict[str, dict[str, Any]]
) -> None:
    daisi = listing["listed-not-installed"]
    assert daisi["broken"] is None
    assert daisi["missing_requirements"] == ["sklearn"]
    execution = run(client, daisi["id"], "ping")
    assert execution["status"] == "FINISHED", execution
    assert execution["result"]["value"] == "pong"


def test_entry_in_a_subfolder_imports_its_siblings(
    client: httpx.Client, listing: dict[str, dict[str, Any]]
) -> None:
    daisi = listing["Sub Entry"]
    assert [e["name"] for e in daisi["endpoints"]] == ["compute"]
    execution = run(client, daisi["id"], "compute", x=2)
    assert execution["status"] == "FINISHED", execution
    assert execution["result"]["value"] == 13
    assert daisi["broken"] is None
