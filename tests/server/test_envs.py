"""An environment per Daisi, over HTTP: pins that conflict, shared builds, failures, the log.

One runtime serves toy Daisies whose requirements are installed offline from a folder
of small local wheels (``toypkg`` 1.0 and 2.0; ``toypkg.VERSION`` says which one a
worker imported). ``--shared-env`` (one environment for all) has its own runtime.
"""

from __future__ import annotations

import re
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.daisi_folders import make_daisi
from tests.support.wheels import toy_links, uv_cache

from daisi_async.testing import LocalRuntime

__all__ = ["toy_links", "uv_cache"]  # session fixtures, used by name

TOKENS = {"tok-alice": "alice", "tok-bob": "bob"}
ALICE = {"Authorization": "token tok-alice"}
BOB = {"Authorization": "token tok-bob"}

TOY_APP = """
import importlib.util
import os
import sys

import toypkg


def version() -> str:
    return toypkg.VERSION


def environment() -> dict:
    import dill

    server_only = ("starlette", "uvicorn", "httpx", "packaging", "pytest")
    return {
        "prefix": sys.prefix,
        "executable": sys.executable,
        "dill": dill.__version__,
        "server_packages": [m for m in server_only if importlib.util.find_spec(m)],
        "virtual_env": os.environ.get("VIRTUAL_ENV"),
        "path": os.environ.get("PATH", ""),
    }
"""

PLAIN_APP = """
import sys


def where() -> str:
    return sys.prefix
"""

PING_APP = "def ping() -> str:\n    return 'pong'\n"


def build_daisies(root: Path) -> Path:
    """The toy Daisies: two pins of toypkg, the same pins written otherwise, failures."""
    make_daisi(root, "toy-one", {"app.py": TOY_APP, "requirements.txt": "toypkg==1.0\n"})
    make_daisi(
        root,
        "toy-two",
        {"app.py": TOY_APP, "requirements.txt": "# the new one\nToyPkg == 2.0   # pinned\n"},
    )
    make_daisi(  # as Windows PowerShell's `pip freeze > requirements.txt` writes it
        root,
        "toy-utf16",
        {
            "app.py": TOY_APP,
            "requirements.txt": b"\xff\xfe" + "toypkg==2.0\r\n".encode("utf-16-le"),
        },
    )
    make_daisi(
        root,
        "toy-include",
        {
            "app.py": TOY_APP,
            "requirements.txt": "-r pins/base.txt\n",
            "pins/base.txt": "toypkg==1.0",
        },
    )
    make_daisi(
        root, "toy-missing-include", {"app.py": PING_APP, "requirements.txt": "-r nope.txt\n"}
    )
    make_daisi(root, "toy-bad", {"app.py": PING_APP, "requirements.txt": "nosuchpkg_zz==1.0\n"})
    make_daisi(root, "plain", {"app.py": PLAIN_APP})
    make_daisi(
        root,
        "secret-toy",
        {
            "app.py": TOY_APP,
            "requirements.txt": "toypkg==1.0\n",
            "daisi.toml": 'owner = "alice"\npublic = false\n',
        },
    )
    return root


def wait_built(client: httpx.Client, *, headers: dict[str, str] | None = None) -> None:
    """Poll until no Daisi is building (generous deadline: the machine is shared)."""
    deadline = time.monotonic() + 180
    while True:
        r = client.get("/v1/daisies", headers=headers)
        assert r.status_code == 200, r.text
        building = [
            d["name"] for d in r.json()["daisies"] if d["state"] in ("building", "starting")
        ]
        if not building:
            return
        assert time.monotonic() < deadline, f"still building: {building}"
        time.sleep(0.1)


def call(
    client: httpx.Client,
    daisi_id: str,
    endpoint: str,
    *,
    headers: dict[str, str] | None = None,
    **args: Any,
) -> dict[str, Any]:
    """Run one execution to its end and return it."""
    body = {"endpoint": endpoint, "arguments": {k: {"value": v} for k, v in args.items()}}
    r = client.post(
        f"/v1/daisies/{daisi_id}/executions", params={"wait": 60}, json=body, headers=headers
    )
    assert r.status_code == 201, r.text
    execution: dict[str, Any] = r.json()
    deadline = time.monotonic() + 180
    while execution["status"] not in ("FINISHED", "FAILED", "CANCELLED"):
        assert time.monotonic() < deadline, execution
        r = client.get(f"/v1/executions/{execution['id']}", params={"wait": 30}, headers=headers)
        assert r.status_code == 200, r.text
        execution = r.json()
    return execution


def value(client: httpx.Client, daisi_id: str, endpoint: str, **kwargs: Any) -> Any:
    execution = call(client, daisi_id, endpoint, **kwargs)
    assert execution["status"] == "FINISHED", execution
    return execution["result"]["value"]


@pytest.fixture(scope="module")
def runtime(
    tmp_path_factory: pytest.TempPathFactory, toy_links: Path, uv_cache: dict[str, str]
) -> Iterator[LocalRuntime]:
    root = build_daisies(tmp_path_factory.mktemp("env-daisies"))
    args = ["--find-links", str(toy_links), "--offline"]
    # The server's site-packages on PYTHONPATH, as when daisi-async is installed there
    # (the worker pool puts the folder holding daisi_async on the workers' PYTHONPATH):
    # it must not show through in a Daisi's environment.
    env = {**uv_cache, "PYTHONPATH": sysconfig.get_path("purelib")}
    with LocalRuntime(root, tokens=TOKENS, extra_args=args, env=env) as rt:
        yield rt


@pytest.fixture(scope="module")
def listing(client: httpx.Client) -> dict[str, dict[str, Any]]:
    wait_built(client)
    r = client.get("/v1/daisies", headers=ALICE)
    assert r.status_code == 200, r.text
    return {d["name"]: d for d in r.json()["daisies"]}


def ids(listing: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: d["id"] for name, d in listing.items()}


def test_two_pins_of_one_package_run_side_by_side(
    client: httpx.Client, runtime: LocalRuntime, listing: dict[str, dict[str, Any]]
) -> None:
    one, two = listing["toy-one"]["id"], listing["toy-two"]["id"]
    assert value(client, one, "version") == "1.0"
    assert value(client, two, "version") == "2.0"
    env_one, env_two = value(client, one, "environment"), value(client, two, "environment")
    envs = (runtime.store / "envs").resolve()
    for env in (env_one, env_two):
        prefix = Path(env["prefix"])
        assert prefix.parent == envs
        assert env["executable"] == str(prefix / "bin" / "python")
        assert env["server_packages"] == []  # nothing of the server's environment leaks
        assert env["virtual_env"] == env["prefix"]
        assert env["path"].split(":")[0] == str(prefix / "bin")
    assert env_one["prefix"] != env_two["prefix"]
    runtime_info = client.get("/capabilities").json()["runtime"]
    assert env_one["dill"] == env_two["dill"] == runtime_info["dill"]  # the server's dill


def test_equal_requirements_share_one_environment(
    client: httpx.Client, runtime: LocalRuntime, listing: dict[str, dict[str, Any]]
) -> None:
    daisi = ids(listing)
    # UTF-16 with a byte-order mark, CRLF, no comment: the same requirements as toy-two.
    assert value(client, daisi["toy-utf16"], "version") == "2.0"
    toys = ("toy-one", "toy-two", "toy-utf16", "toy-include")
    prefix = {n: value(client, daisi[n], "environment")["prefix"] for n in toys}
    assert prefix["toy-utf16"] == prefix["toy-two"]
    assert prefix["toy-include"] == prefix["toy-one"]  # -r pins/base.txt, read and inlined
    built = sorted(p.name for p in (runtime.store / "envs").iterdir())
    # toy-one (with toy-include and secret-toy), toy-two (with toy-utf16), toy-bad's failure
    assert len(built) == 3, built
    assert {Path(p).name for p in prefix.values()} < set(built)


def test_daisies_with_their_own_environment_list_no_missing_requirement(
    listing: dict[str, dict[str, Any]],
) -> None:
    states = {name: d["state"] for name, d in listing.items()}
    assert states == {
        "toy-one": "ready",
        "toy-two": "ready",
        "toy-utf16": "ready",
        "toy-include": "ready",
        "toy-missing-include": "broken",
        "toy-bad": "broken",
        "plain": "ready",
        "secret-toy": "ready",
    }
    assert listing["toy-one"]["missing_requirements"] == []  # installed in its environment
    assert listing["toy-one"]["broken"] is None


def test_an_unresolvable_requirement_breaks_only_its_daisi(
    client: httpx.Client, runtime: LocalRuntime, listing: dict[str, dict[str, Any]]
) -> None:
    bad = listing["toy-bad"]
    assert bad["state"] == "broken"
    assert "No solution found" in bad["broken"] and "nosuchpkg-zz" in bad["broken"], bad
    execution = call(client, bad["id"], "ping")
    assert execution["status"] == "FAILED"
    error = execution["error"]
    assert error["type"] == "daisi.EnvironmentError"
    assert "No solution found" in error["message"] and "nosuchpkg-zz" in error["message"]
    r = client.get(f"/v1/daisies/{bad['id']}/build")
    assert r.status_code == 200, r.text
    build = r.json()
    assert build["state"] == "failed"
    assert any("No solution found" in line for line in build["log"]), build
    assert "[local/toy-bad] environment build FAILED" in runtime.logs()
    assert value(client, listing["toy-one"]["id"], "version") == "1.0"  # the others work


def test_a_missing_include_breaks_only_its_daisi(
    client: httpx.Client, listing: dict[str, dict[str, Any]]
) -> None:
    daisi = listing["toy-missing-include"]
    assert "-r nope.txt" in daisi["broken"] and "No such file" in daisi["broken"], daisi
    execution = call(client, daisi["id"], "ping")
    assert (execution["status"], execution["error"]["type"]) == ("FAILED", "daisi.EnvironmentError")
    assert "-r nope.txt" in execution["error"]["message"]
    build = client.get(f"/v1/daisies/{daisi['id']}/build").json()
    assert build["state"] == "failed" and "-r nope.txt" in build["log"][0]
    assert value(client, listing["toy-two"]["id"], "version") == "2.0"


def test_a_daisi_without_requirements_runs_in_the_server_environment(
    client: httpx.Client, listing: dict[str, dict[str, Any]]
) -> None:
    plain = listing["plain"]
    assert value(client, plain["id"], "where") == sys.prefix
    r = client.get(f"/v1/daisies/{plain['id']}/build")
    assert r.status_code == 200, r.text
    assert r.json() == {"state": "shared", "log": []}


def test_the_build_log_is_readable_as_the_daisi_is(
    client: httpx.Client, runtime: LocalRuntime, listing: dict[str, dict[str, Any]]
) -> None:
    r = client.get(f"/v1/daisies/{listing['toy-one']['id']}/build")
    assert r.status_code == 200, r.text
    build = r.json()
    assert build["state"] == "ready"
    assert " + toypkg==1.0" in build["log"], build
    secret = listing["secret-toy"]["id"]
    for headers in (BOB, {}):
        r = client.get(f"/v1/daisies/{secret}/build", headers=headers)
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "not_found"
    for unknown in (str(uuid.uuid4()), "toy-one-not-an-id"):
        r = client.get(f"/v1/daisies/{unknown}/build")
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "not_found"
    r = client.get(f"/v1/daisies/{secret}/build", headers=ALICE)
    assert r.status_code == 200 and r.json()["state"] == "ready", r.text
    # On the console, each line names the Daisies that share the environment.
    console = runtime.logs().splitlines()
    assert any(
        re.match(r"\[[^]]*local/toy-one[^]]*\] building the environment", x) for x in console
    )
    assert any(re.match(r"\[[^]]*local/toy-one[^]]*\] \|  \+ toypkg==1\.0$", x) for x in console)
    assert any(re.match(r"\[[^]]*local/toy-one[^]]*\] environment ready in", x) for x in console)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    root = tmp_path_factory.mktemp("shared-env")
    make_daisi(root, "toy-one", {"app.py": TOY_APP, "requirements.txt": "toypkg==1.0\n"})
    make_daisi(
        root, "listed-only", {"app.py": PLAIN_APP, "requirements.txt": "surely_missing_pkg_zz\n"}
    )
    with LocalRuntime(root, extra_args=["--shared-env"]) as rt:
        yield rt


def test_shared_env_keeps_one_environment_for_all(shared: LocalRuntime) -> None:
    with httpx.Client(base_url=shared.api, timeout=60) as client:
        wait_built(client)
        daisies = {d["name"]: d for d in client.get("/v1/daisies").json()["daisies"]}
        # toypkg is not installed in the server's environment: the import decides.
        toy = daisies["toy-one"]
        assert toy["state"] == "broken"
        assert "No module named 'toypkg'" in toy["broken"]
        execution = call(client, toy["id"], "version")
        assert (execution["status"], execution["error"]["type"]) == ("FAILED", "daisi.DaisiBroken")
        listed = daisies["listed-only"]
        assert listed["state"] == "ready"
        assert listed["missing_requirements"] == ["surely_missing_pkg_zz"]
        assert value(client, listed["id"], "where") == sys.prefix
        build = client.get(f"/v1/daisies/{listed['id']}/build").json()
        assert build == {"state": "shared", "log": []}
    assert not (shared.store / "envs").exists()
    assert (
        "[local/listed-only] requirements not installed in the server's environment:"
        " surely_missing_pkg_zz"
    ) in shared.logs()
