"""Settings (``[env]`` in daisi.toml) and secrets (``daisi serve --secrets FILE``) per Daisi.

A runtime per isolation (``none``, ``sandbox``) serves: "NASA Images", which reads its
secret at import as a real Daisi did; "layers", which gets a variable from every source
(to show the precedence); "plain", which gets nothing; two "Twin" Daisies of different
owners (a name table that names both reaches neither). The secrets never appear in a
route's reply or on the server's console.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.daisi_folders import make_daisi
from tests.support.isolation import ISOLATIONS

import daisi_async
from daisi_async.testing import LocalRuntime

PACKAGE_ROOT = str(Path(daisi_async.__file__).resolve().parent.parent)
NASA_KEY = "nasa-key-0f1e2d3c"
LAYER_SECRET = "layer-secret-9a8b7c"
TWIN_SECRET = "twin-secret-5d6e"
SECRET_VALUES = (NASA_KEY, LAYER_SECRET, TWIN_SECRET)
SERVER_ENV = {"SHARED": "server", "PASSED_TOO": "server", "ONLY_SERVER": "server"}
PASS = [arg for name in SERVER_ENV for arg in ("--env-pass", name)]
NAMES = ["MY_NASA_KEY", "SHARED", "PASSED_TOO", "ONLY_SERVER", "FROM_TOML", "TWIN_KEY"]

READER = """
    import os

    NAMES = {names!r}


    def seen() -> dict:
        return {{name: os.environ.get(name) for name in NAMES}}


    def base_url() -> str:
        return os.environ["DAISI_BASE_URL"]
"""

NASA = """
    import os

    MY_NASA_KEY = os.environ["MY_NASA_KEY"]  # read at import, as the platform's Daisies did


    def key_length() -> int:
        return len(MY_NASA_KEY)
"""

SECRETS = f"""
["NASA Images"]
MY_NASA_KEY = "{NASA_KEY}"

["local/layers"]
SHARED = "{LAYER_SECRET}"

["Twin"]
TWIN_KEY = "{TWIN_SECRET}"

["Nobody Here"]
UNUSED = "{TWIN_SECRET}"
"""


def build_tree(root: Path) -> Path:
    reader = READER.format(names=NAMES)
    make_daisi(root, "nasa", {"app.py": NASA, "daisi.toml": 'name = "NASA Images"\n'})
    make_daisi(
        root,
        "layers",
        {
            "app.py": reader,
            "daisi.toml": """
                [env]
                SHARED = "toml"
                PASSED_TOO = "toml"
                FROM_TOML = "toml"
            """,
        },
    )
    make_daisi(root, "plain", {"app.py": reader})
    for owner in ("alice", "bob"):
        make_daisi(
            root,
            f"twin-{owner}",
            {"app.py": reader, "daisi.toml": f'name = "Twin"\nowner = "{owner}"\n'},
        )
    make_daisi(
        root,
        "bad-env",
        {"app.py": reader, "daisi.toml": '[env]\nPORT = 8080\nDAISI_BASE_URL = "http://x"\n'},
    )
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tree(tmp_path_factory.mktemp("secrets-tree"))


@pytest.fixture(scope="module")
def secrets_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("operator") / "secrets.toml"
    path.write_text(SECRETS)
    return path


@pytest.fixture(scope="module", params=ISOLATIONS)
def runtime(
    request: pytest.FixtureRequest, tree: Path, secrets_file: Path
) -> Iterator[LocalRuntime]:
    args = ["--isolation", request.param, "--secrets", str(secrets_file), *PASS]
    with LocalRuntime(tree, extra_args=args, env=SERVER_ENV, workers=0) as rt:
        yield rt


@pytest.fixture(scope="module")
def listing(runtime: LocalRuntime) -> dict[str, dict[str, Any]]:
    r = httpx.get(runtime.api + "/v1/daisies", timeout=60)
    assert r.status_code == 200, r.text
    return {d["full_name"]: d for d in r.json()["daisies"]}


def value(rt: LocalRuntime, daisi_id: str, endpoint: str) -> Any:
    r = httpx.post(
        rt.api + f"/v1/daisies/{daisi_id}/executions",
        params={"wait": 60},
        json={"endpoint": endpoint, "arguments": {}},
        timeout=120,
    )
    assert r.status_code == 201, r.text
    execution = r.json()
    assert execution["status"] == "FINISHED", execution
    return execution["result"]["value"]


def test_a_secret_read_at_import(runtime: LocalRuntime, listing: dict[str, Any]) -> None:
    assert value(runtime, listing["local/NASA Images"]["id"], "key_length") == len(NASA_KEY)


def test_precedence_of_the_sources(runtime: LocalRuntime, listing: dict[str, Any]) -> None:
    seen = value(runtime, listing["local/layers"]["id"], "seen")
    assert seen == {
        "MY_NASA_KEY": None,  # another Daisi's secret
        "SHARED": LAYER_SECRET,  # server < --env-pass < [env] < secrets
        "PASSED_TOO": "toml",  # --env-pass < [env]
        "ONLY_SERVER": "server",  # --env-pass
        "FROM_TOML": "toml",
        "TWIN_KEY": None,
    }
    assert value(runtime, listing["local/layers"]["id"], "base_url") == runtime.url


def test_settings_and_secrets_reach_only_their_daisi(
    runtime: LocalRuntime, listing: dict[str, Any]
) -> None:
    seen = value(runtime, listing["local/plain"]["id"], "seen")
    assert seen == {name: None for name in NAMES} | {"ONLY_SERVER": "server"} | {
        "SHARED": "server",
        "PASSED_TOO": "server",
    }


def test_a_name_shared_by_several_owners_reaches_neither(
    runtime: LocalRuntime, listing: dict[str, Any]
) -> None:
    for owner in ("alice", "bob"):
        assert value(runtime, listing[f"{owner}/Twin"]["id"], "seen")["TWIN_KEY"] is None
    logs = runtime.logs()
    assert "the secrets table ['twin'] names Daisies of several owners (alice, bob)" in logs
    assert "the secrets file has a table ['nobody here'] that names no served Daisi" in logs


def test_an_invalid_env_table_breaks_only_its_daisi(
    runtime: LocalRuntime, listing: dict[str, Any]
) -> None:
    broken = listing["local/bad-env"]["broken"]
    assert "invalid daisi.toml: env: PORT must be a string (write it in quotes), not int" in broken
    assert "invalid daisi.toml: env: DAISI_BASE_URL is set by the runtime" in broken
    r = httpx.post(
        runtime.api + f"/v1/daisies/{listing['local/bad-env']['id']}/executions",
        params={"wait": 60},
        json={"endpoint": "seen", "arguments": {}},
        timeout=120,
    )
    assert r.status_code == 201 and r.json()["status"] == "FAILED", r.text
    assert r.json()["error"]["type"] == "daisi.DaisiBroken", r.text
    assert value(runtime, listing["local/plain"]["id"], "seen")["FROM_TOML"] is None


def test_secrets_appear_in_no_reply_and_not_on_the_console(
    runtime: LocalRuntime, listing: dict[str, Any]
) -> None:
    value(runtime, listing["local/NASA Images"]["id"], "key_length")  # workers started
    pages = ["/", "/executions", "/healthz", "/metrics", "/pebble-api/openapi.json"]
    api = ["/capabilities", "/v1/daisies", "/v1/executions", "/daisies/collections/all/daisies"]
    for daisi in listing.values():
        did, name = daisi["id"], daisi["full_name"]
        pages.append(f"/daisies/{name}")
        api += [f"/v1/daisies/{did}", f"/v1/daisies/{name}", f"/v1/daisies/{did}/build"]
        api += [f"/v1/daisies/{did}/log", f"/v1/daisies/{did}/workers", f"/pebbles/{did}"]
        api += [f"/pebbles/{did}/endpoints", f"/daisies/connect?name={name}"]
    replies = 0
    with httpx.Client(timeout=60) as client:
        for path in [*pages, *(f"/pebble-api{p}" for p in api)]:
            r = client.get(runtime.url + path)
            assert r.status_code in (200, 404, 409), (path, r.status_code, r.text)
            replies += r.status_code == 200
            for secret in SECRET_VALUES:
                assert secret not in r.text, path
    assert replies > 40
    for secret in SECRET_VALUES:
        assert secret not in runtime.logs()


# -- a secrets file that can't be used: refused at startup --------------------------------


def serve(tree: Path, store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "daisi_async", "serve", str(tree), "--store", str(store)]
    return subprocess.run(
        [*cmd, "--port", "0", "--isolation", "none", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": PACKAGE_ROOT},
    )


HIDDEN = "do-not-print-this-value"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (f'["x"]\nKEY = 123\nOTHER = "{HIDDEN}"\n', "['x']: KEY must be a string"),
        (f'["x"]\n"NOT A NAME" = "{HIDDEN}"\n', "'NOT A NAME' is not an environment variable"),
        (f'["x"]\nDAISI_BASE_URL = "{HIDDEN}"\n', "DAISI_BASE_URL is set by the runtime"),
        (f'KEY = "{HIDDEN}"\n', "'KEY' must be a table named after a Daisi"),
        (f'["x"]\nKEY = "{HIDDEN}\x01"\n', "is not valid TOML: a syntax error (at line 2"),
        (f'["x"]\nKEY = "{HIDDEN}\n', "is not valid TOML"),
        (f'["x"]\nA = "{HIDDEN}"\n["X"]\nB = "{HIDDEN}"\n', "the table ['X'] appears twice"),
    ],
)
def test_an_invalid_secrets_file_is_refused_without_its_values(
    tree: Path, tmp_path: Path, content: str, message: str
) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(content)
    store = tmp_path / "store"
    done = serve(tree, store, "--secrets", str(secrets))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("daisi serve: --secrets: ") and str(secrets) in done.stderr
    assert message in done.stderr
    assert HIDDEN not in done.stderr + done.stdout
    assert not store.exists()  # refused before anything was created


@pytest.mark.parametrize("where", ["served folder", "store", "missing"])
def test_a_secrets_file_in_reach_of_daisies_is_refused(
    tree: Path, tmp_path: Path, where: str
) -> None:
    store = tmp_path / "store"
    if where == "served folder":
        secrets = tree / "plain" / "secrets.toml"
    elif where == "store":
        secrets = store / "secrets.toml"
        store.mkdir()
    else:
        secrets = tmp_path / "nowhere.toml"
    if where != "missing":
        secrets.write_text(f'["plain"]\nKEY = "{HIDDEN}"\n')
    try:
        done = serve(tree, store, "--secrets", str(secrets))
    finally:
        if where == "served folder":
            secrets.unlink()
    assert done.returncode == 2, done.stderr
    expected = {
        "served folder": "is inside the served folder",
        "store": "is inside the store",
        "missing": "can't read",
    }[where]
    assert expected in done.stderr
    assert HIDDEN not in done.stderr + done.stdout
    assert not (store / "daisi.sqlite3").exists()
