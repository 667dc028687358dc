"""Tokens and visibility over raw HTTP: 401 for bad tokens, 404 for what is not yours.

The runtime serves two Daisies written here: a public one (owner ``local``, the
default) and a private one owned by alice. Tokens: ``tok-alice`` -> alice, ``tok-bob``
-> bob, ``tok-local`` -> local.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dill
import httpx
import pytest

from daisi_async.testing import LocalRuntime

TOKENS = {"tok-alice": "alice", "tok-bob": "bob", "tok-local": "local"}
ALICE = {"Authorization": "token tok-alice"}
BOB = {"Authorization": "token tok-bob"}
LOCAL = {"Authorization": "token tok-local"}
ANON: dict[str, str] = {}
SEES_PRIVATE = [ALICE, {"Authorization": "Bearer tok-alice"}, {"Authorization": "bearer tok-alice"}]
NOT_ALICE = [pytest.param(BOB, id="bob"), pytest.param(ANON, id="anonymous")]

PUBLIC_APP = '''
import time


def greet(name: str = "World") -> str:
    """Say hi."""
    print(f"greeting {name}")
    return f"Hi {name}!"


def slow(seconds: float = 1.0) -> str:
    """Sleep, then answer."""
    print("sleeping")
    time.sleep(seconds)
    return "slept"
'''

SECRET_APP = '''
def recipe(x: int = 1) -> int:
    """The secret: double it."""
    print(f"secret recipe for {x}")
    return x * 2
'''


def write_daisies(root: Path) -> Path:
    pub = root / "public-greeter"
    pub.mkdir(parents=True)
    (pub / "daisi.toml").write_text('name = "Public Greeter"\n')
    (pub / "app.py").write_text(textwrap.dedent(PUBLIC_APP))
    secret = root / "secret-sauce"
    secret.mkdir()
    (secret / "daisi.toml").write_text(
        'name = "Secret Sauce"\nowner = "alice"\npublic = false\ndescription = "Private."\n'
    )
    (secret / "app.py").write_text(textwrap.dedent(SECRET_APP))
    return root


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    root = write_daisies(tmp_path_factory.mktemp("auth-daisies"))
    with LocalRuntime(root, tokens=TOKENS) as rt:
        yield rt


@pytest.fixture(scope="module")
def pub(client: httpx.Client) -> str:
    r = client.get("/daisies/connect", params={"name": "Public Greeter"})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


@pytest.fixture(scope="module")
def secret(client: httpx.Client) -> str:
    r = client.get("/daisies/connect", params={"name": "Secret Sauce"}, headers=ALICE)
    assert r.status_code == 200, r.text
    assert r.json()["owner"] == "alice"
    return str(r.json()["id"])


def run(
    client: httpx.Client, did: str, endpoint: str, args: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    """Submit (v1) and wait for the end."""
    r = client.post(
        f"/v1/daisies/{did}/executions",
        params={"wait": 30},
        json={"endpoint": endpoint, "arguments": {k: {"value": v} for k, v in args.items()}},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture(scope="module")
def alice_pub_eid(client: httpx.Client, pub: str) -> str:
    body = run(client, pub, "greet", {"name": "alice"}, ALICE)
    assert body["result"]["value"] == "Hi alice!"
    return str(body["id"])


@pytest.fixture(scope="module")
def alice_secret_eid(client: httpx.Client, secret: str) -> str:
    body = run(client, secret, "recipe", {"x": 21}, ALICE)
    assert body["result"]["value"] == 42
    return str(body["id"])


@pytest.fixture(scope="module")
def anon_eid(client: httpx.Client, pub: str) -> str:
    body = run(client, pub, "greet", {"name": "anyone"}, ANON)
    assert body["result"]["value"] == "Hi anyone!"
    return str(body["id"])


def not_found(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 404, (r.status_code, r.text)
    err: dict[str, Any] = r.json()["error"]
    assert err["code"] == "not_found"
    return err


# -- 401 on every route family -----------------------------------------------------------


BAD_HEADERS = [
    {"Authorization": "token nope"},
    {"Authorization": "Bearer nope"},
    {"Authorization": "token"},
    {"Authorization": "tok-alice"},
    {"Authorization": "Basic dG9rLWFsaWNlOg=="},
    {"Authorization": "token tok-alice extra"},
]


def route_table(pub: str, eid: str) -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/capabilities", None),
        ("GET", "/daisies/connect?name=Public%20Greeter", None),
        ("GET", "/daisies/collections/all/daisies", None),
        ("GET", f"/daisies/workers/{pub}/number", None),
        ("GET", f"/daisies/workers/{pub}/status", None),
        ("POST", f"/daisies/workers/{pub}", {"worker_number": 2}),
        ("GET", f"/pebbles/{pub}", None),
        ("GET", f"/pebbles/{pub}/endpoints", None),
        ("POST", f"/pebbles/{pub}/executions/greet", {"name": "x"}),
        ("GET", f"/pebbles/{pub}/executions/{eid}/status", None),
        ("GET", f"/pebbles/{pub}/executions/{eid}/logs", None),
        ("GET", f"/pebbles/{pub}/executions/{eid}/results?download=true", None),
        ("POST", "/pebbles/pickle", {"data": "gAVLAS4="}),
        ("POST", f"/pebbles/{pub}/map", {"executions": [{"endpoint": "greet", "arguments": {}}]}),
        ("POST", f"/pebbles/{pub}/results_map", {"executions": [{"id": eid}]}),
        ("GET", "/v1/daisies", None),
        ("GET", "/v1/daisies/Public%20Greeter", None),
        ("GET", f"/v1/daisies/{pub}", None),
        ("GET", f"/v1/daisies/{pub}/workers", None),
        ("PUT", f"/v1/daisies/{pub}/workers", {"number": 2}),
        ("POST", f"/v1/daisies/{pub}/executions", {"endpoint": "greet", "arguments": {}}),
        ("POST", "/v1/executions", {"executions": [{"daisi_id": pub, "endpoint": "greet"}]}),
        ("POST", "/v1/executions/wait", {"ids": [eid], "timeout": 1}),
        ("POST", "/v1/blobs", b"\x80\x05K\x01."),
        ("GET", f"/v1/blobs/r-{eid}", None),
        ("GET", f"/v1/executions/{eid}", None),
        ("GET", f"/v1/executions/{eid}/result", None),
        ("GET", f"/v1/executions/{eid}/logs", None),
        ("GET", f"/v1/executions/{eid}/events", None),
        ("POST", f"/v1/executions/{eid}/cancel", None),
    ]


def send(
    client: httpx.Client, method: str, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    if isinstance(body, bytes):
        return client.request(method, path, content=body, headers=headers)
    if body is None:
        return client.request(method, path, headers=headers)
    return client.request(method, path, content=json.dumps(body).encode(), headers=headers)


def count_rows(runtime: LocalRuntime) -> tuple[int, int]:
    db = sqlite3.connect(f"file:{runtime.store / 'daisi.sqlite3'}?mode=ro", uri=True)
    try:
        ex = db.execute("SELECT COUNT(*) FROM executions").fetchone()[0]
        blobs = db.execute("SELECT COUNT(*) FROM blobs").fetchone()[0]
        return int(ex), int(blobs)
    finally:
        db.close()


@pytest.mark.parametrize("headers", BAD_HEADERS, ids=lambda h: h["Authorization"])
def test_bad_token_is_401_everywhere(
    client: httpx.Client, runtime: LocalRuntime, pub: str, anon_eid: str, headers: dict[str, str]
) -> None:
    before = count_rows(runtime)
    for method, path, body in route_table(pub, anon_eid):
        r = send(client, method, path, body, headers)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        err = r.json()["error"]
        assert err["status"] == 401 and err["code"] == "unauthorized", (path, err)
        assert err["message"]
    assert count_rows(runtime) == before
    # The anonymous execution was not cancelled and workers were not resized.
    assert client.get(f"/v1/executions/{anon_eid}").json()["status"] == "FINISHED"
    assert client.get(f"/v1/daisies/{pub}/workers").json()["number"] == 1


def test_good_tokens_and_anonymous_work_everywhere(
    client: httpx.Client, pub: str, anon_eid: str
) -> None:
    for headers in (ALICE, BOB, ANON, {"Authorization": "Bearer tok-bob"}):
        for method, path, body in route_table(pub, anon_eid):
            if method in ("POST", "PUT") and "workers" in path:
                continue  # resizing is tested elsewhere
            r = send(client, method, path, body, headers)
            assert r.status_code < 400, (headers, method, path, r.status_code, r.text)


# -- private Daisies -----------------------------------------------------------------------


@pytest.mark.parametrize("headers", SEES_PRIVATE, ids=["token", "Bearer", "bearer"])
def test_owner_sees_and_calls_private_daisi(
    client: httpx.Client, secret: str, headers: dict[str, str]
) -> None:
    for name in ("Secret Sauce", "secret sauce", "alice/Secret Sauce", "ALICE/SECRET SAUCE"):
        r = client.get("/daisies/connect", params={"name": name}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["id"] == secret
    info = client.get(f"/pebbles/{secret}", headers=headers).json()
    assert info["name"] == "Secret Sauce" and info["owner"] == "alice"
    eps = client.get(f"/pebbles/{secret}/endpoints", headers=headers).json()
    assert [p["id"] for p in eps[0]["schema"]] == ["x"]
    v1 = client.get(f"/v1/daisies/{secret}", headers=headers).json()
    assert v1["public"] is False and v1["owner"] == "alice"
    assert client.get("/v1/daisies/alice%2FSecret%20Sauce", headers=headers).json()["id"] == secret
    assert secret in [d["id"] for d in client.get("/v1/daisies", headers=headers).json()["daisies"]]
    catalogue = client.get("/daisies/collections/all/daisies", headers=headers).json()["data"]
    assert catalogue["total"] == 2
    assert {d["name"] for d in catalogue["data"]} == {"Public Greeter", "Secret Sauce"}
    assert client.get(f"/daisies/workers/{secret}/number", headers=headers).json() == 1

    # Legacy submission and results.
    r = client.post(f"/pebbles/{secret}/executions/recipe", json={"x": 5}, headers=headers)
    assert r.status_code == 201, r.text
    eid = r.json()["id"]
    deadline = time.monotonic() + 30
    while (
        client.get(f"/pebbles/{secret}/executions/{eid}/status", headers=headers).json()
        != "FINISHED"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.03)
    res = client.get(
        f"/pebbles/{secret}/executions/{eid}/results", params={"download": True}, headers=headers
    ).json()
    assert dill.loads(base64.b64decode(res["results"])) == 10
    assert res["message"] == "secret recipe for 5"
    # v1 submission.
    assert run(client, secret, "recipe", {"x": 4}, headers)["result"]["value"] == 8


@pytest.mark.parametrize("headers", NOT_ALICE)
def test_private_daisi_is_404_for_others(
    client: httpx.Client, runtime: LocalRuntime, secret: str, pub: str, headers: dict[str, str]
) -> None:
    before = count_rows(runtime)
    unknown = str(uuid.uuid4())
    for name in ("Secret Sauce", "alice/Secret Sauce", secret):
        err = not_found(client.get("/daisies/connect", params={"name": name}, headers=headers))
        # Exactly what a Daisi that does not exist gets.
        ghost = client.get("/daisies/connect", params={"name": "Ghost"}, headers=headers)
        assert err["message"] == ghost.json()["error"]["message"].replace("Ghost", name)
    for did in (secret, secret.upper()):
        assert not_found(client.get(f"/pebbles/{did}", headers=headers)) == not_found(
            client.get(f"/pebbles/{unknown}", headers=headers)
        )
        not_found(client.get(f"/pebbles/{did}/endpoints", headers=headers))
        not_found(client.get(f"/v1/daisies/{did}", headers=headers))
    not_found(client.get("/v1/daisies/Secret%20Sauce", headers=headers))
    not_found(client.get("/v1/daisies/alice%2FSecret%20Sauce", headers=headers))
    not_found(client.post(f"/pebbles/{secret}/executions/recipe", json={"x": 1}, headers=headers))
    not_found(
        client.post(
            f"/pebbles/{secret}/map",
            json={"executions": [{"endpoint": "recipe", "arguments": {"x": 1}}]},
            headers=headers,
        )
    )
    not_found(
        client.post(
            f"/v1/daisies/{secret}/executions",
            json={"endpoint": "recipe", "arguments": {"x": {"value": 1}}},
            headers=headers,
        )
    )
    r = client.post(
        "/v1/executions",
        json={"executions": [{"daisi_id": secret, "endpoint": "recipe", "arguments": {}}]},
        headers=headers,
    )
    assert r.json()["results"][0]["error"]["status"] == 404
    not_found(client.get(f"/daisies/workers/{secret}/number", headers=headers))
    not_found(client.get(f"/daisies/workers/{secret}/status", headers=headers))
    not_found(client.post(f"/daisies/workers/{secret}", json={"worker_number": 3}, headers=headers))
    not_found(client.get(f"/v1/daisies/{secret}/workers", headers=headers))
    not_found(client.put(f"/v1/daisies/{secret}/workers", json={"number": 3}, headers=headers))

    listed = client.get("/v1/daisies", headers=headers).json()["daisies"]
    assert [d["name"] for d in listed] == ["Public Greeter"]
    catalogue = client.get("/daisies/collections/all/daisies", headers=headers).json()["data"]
    assert catalogue["total"] == 1
    assert [d["name"] for d in catalogue["data"]] == ["Public Greeter"]
    assert count_rows(runtime) == before
    assert client.get(f"/v1/daisies/{secret}/workers", headers=ALICE).json()["number"] == 1


# -- executions are visible to their maker ----------------------------------------------------


def execution_routes(did: str, eid: str) -> list[tuple[str, str]]:
    return [
        ("GET", f"/pebbles/{did}/executions/{eid}/status"),
        ("GET", f"/pebbles/{did}/executions/{eid}/results?download=true"),
        ("GET", f"/pebbles/{did}/executions/{eid}/logs"),
        ("GET", f"/v1/executions/{eid}"),
        ("GET", f"/v1/executions/{eid}?wait=1&result=1"),
        ("GET", f"/v1/executions/{eid}/result"),
        ("GET", f"/v1/executions/{eid}/logs"),
        ("GET", f"/v1/executions/{eid}/events"),
        ("POST", f"/v1/executions/{eid}/cancel"),
    ]


@pytest.mark.parametrize("headers", NOT_ALICE)
@pytest.mark.parametrize("which", ["public", "private"])
def test_alice_executions_are_404_for_others(
    client: httpx.Client,
    pub: str,
    secret: str,
    alice_pub_eid: str,
    alice_secret_eid: str,
    headers: dict[str, str],
    which: str,
) -> None:
    did, eid = (pub, alice_pub_eid) if which == "public" else (secret, alice_secret_eid)
    for method, path in execution_routes(did, eid):
        not_found(client.request(method, path, headers=headers))
        # Alice herself reads them.
        r = client.request(method, path, headers=ALICE)
        assert r.status_code == 200, (path, r.text)
    # Also through the legacy routes of a Daisi they can see.
    not_found(client.get(f"/pebbles/{pub}/executions/{eid}/status", headers=headers))
    not_found(
        client.post(
            f"/pebbles/{pub}/results_map", json={"executions": [{"id": eid}]}, headers=headers
        )
    )
    r = client.post("/v1/executions/wait", json={"ids": [eid], "timeout": 1}, headers=headers)
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert lines[0]["type"] == "error" and lines[0]["id"] == eid
    assert lines[0]["error"]["status"] == 404
    assert lines[-1] == {"type": "end", "pending": []}
    # Their result can't be used as an argument either.
    r = client.post(
        f"/pebbles/{pub}/executions/greet", json={"name": f"lookup:{eid}"}, headers=headers
    )
    assert r.status_code == 422 and r.json()["error"]["param"] == "name"
    r = client.post(
        f"/v1/daisies/{pub}/executions",
        json={"endpoint": "greet", "arguments": {"name": {"execution": eid}}},
        headers=headers,
    )
    assert r.status_code == 422 and r.json()["error"]["param"] == "name"
    # Nor read as a blob, nor used as one.
    not_found(client.get(f"/v1/blobs/r-{eid}", headers=headers))
    r = client.post(
        f"/pebbles/{pub}/executions/greet", json={"name": f"lookup:r-{eid}"}, headers=headers
    )
    assert r.status_code == 422
    r = client.get(f"/v1/blobs/r-{eid}", headers=ALICE)
    assert r.status_code == 200
    assert dill.loads(r.content) in ("Hi alice!", 42)


def test_cancel_by_another_user_does_nothing(client: httpx.Client, pub: str) -> None:
    r = client.post(
        f"/v1/daisies/{pub}/executions",
        json={"endpoint": "slow", "arguments": {"seconds": {"value": 0.8}}},
        headers=ALICE,
    )
    eid = r.json()["id"]
    not_found(client.post(f"/v1/executions/{eid}/cancel", headers=BOB))
    not_found(client.post(f"/v1/executions/{eid}/cancel"))
    done = client.get(f"/v1/executions/{eid}", params={"wait": 30}, headers=ALICE).json()
    assert done["status"] == "FINISHED"


def test_bob_executions_are_invisible_to_alice(client: httpx.Client, pub: str) -> None:
    eid = run(client, pub, "greet", {"name": "bob"}, BOB)["id"]
    for method, path in execution_routes(pub, eid):
        not_found(client.request(method, path, headers=ALICE))
        not_found(client.request(method, path, headers=ANON))
    r = client.get(f"/v1/executions/{eid}/result", headers=BOB)
    assert r.json() == "Hi bob!"


@pytest.mark.parametrize(
    "headers",
    [ALICE, BOB, ANON, {"Authorization": "Bearer tok-bob"}],
    ids=["alice", "bob", "anon", "bearer"],
)
def test_anonymous_executions_are_readable_by_anyone(
    client: httpx.Client, pub: str, anon_eid: str, headers: dict[str, str]
) -> None:
    r = client.get(f"/pebbles/{pub}/executions/{anon_eid}/status", headers=headers)
    assert r.json() == "FINISHED"
    r = client.get(f"/pebbles/{pub}/executions/{anon_eid}/logs", headers=headers)
    assert r.json() == ["greeting anyone"]
    r = client.get(f"/v1/executions/{anon_eid}/result", headers=headers)
    assert r.json() == "Hi anyone!"
    r = client.get(f"/v1/executions/{anon_eid}", params={"result": 1}, headers=headers)
    assert r.json()["result"]["value"] == "Hi anyone!"
    # ... and usable as an argument by anyone.
    r = client.post(
        f"/v1/daisies/{pub}/executions",
        params={"wait": 30},
        json={"endpoint": "greet", "arguments": {"name": {"execution": anon_eid}}},
        headers=headers,
    )
    assert r.json()["result"]["value"] == "Hi Hi anyone!!"


def test_blobs_are_private_to_their_uploader(client: httpx.Client, pub: str) -> None:
    data = dill.dumps("alice's secret")
    r = client.post("/v1/blobs", content=data, headers=ALICE)
    key = r.json()["key"]
    assert client.get(f"/v1/blobs/{key}", headers=ALICE).content == data
    not_found(client.get(f"/v1/blobs/{key}", headers=BOB))
    not_found(client.get(f"/v1/blobs/{key}"))
    r = client.post(
        f"/v1/daisies/{pub}/executions",
        json={"endpoint": "greet", "arguments": {"name": {"blob": key}}},
        headers=BOB,
    )
    assert r.status_code == 422 and r.json()["error"]["param"] == "name"
    r = client.post(f"/pebbles/{pub}/executions/greet", json={"name": f"lookup:{key}"}, headers=BOB)
    assert r.status_code == 422
    assert run(client, pub, "greet", {}, ALICE)["status"] == "FINISHED"
    r = client.post(
        f"/v1/daisies/{pub}/executions",
        params={"wait": 30},
        json={"endpoint": "greet", "arguments": {"name": {"blob": key}}},
        headers=ALICE,
    )
    assert r.json()["result"]["value"] == "Hi alice's secret!"
    # Anonymous uploads are usable by anyone.
    anon_key = client.post("/v1/blobs", content=dill.dumps("shared")).json()["key"]
    assert client.get(f"/v1/blobs/{anon_key}", headers=BOB).status_code == 200
    r = client.post(
        f"/pebbles/{pub}/executions/greet", json={"name": f"lookup:{anon_key}"}, headers=BOB
    )
    assert r.status_code == 201


def test_idempotency_keys_are_scoped_to_the_caller(client: httpx.Client, pub: str) -> None:
    key = f"shared-{uuid.uuid4()}"
    body = {"endpoint": "greet", "arguments": {"name": {"value": "idem"}}}
    ids = []
    for headers in (ALICE, BOB, ANON, ALICE):
        r = client.post(
            f"/v1/daisies/{pub}/executions", json=body, headers={**headers, "Idempotency-Key": key}
        )
        assert r.status_code in (200, 201)
        ids.append((r.status_code, r.json()["id"]))
    assert [s for s, _ in ids] == [201, 201, 201, 200]
    assert len({e for _, e in ids[:3]}) == 3
    assert ids[3][1] == ids[0][1]


# -- changing a Daisi takes its owner's token ----------------------------------------------


def pool_size(client: httpx.Client, did: str, headers: dict[str, str]) -> int:
    r = client.get(f"/v1/daisies/{did}/workers", headers=headers)
    assert r.status_code == 200, r.text
    return int(r.json()["number"])


def wait_pool(client: httpx.Client, did: str, headers: dict[str, str], n: int) -> None:
    deadline = time.monotonic() + 30
    while pool_size(client, did, headers) != n:
        assert time.monotonic() < deadline, f"the pool did not reach {n} workers"
        time.sleep(0.05)


def test_workers_of_a_public_daisi_change_only_with_its_owners_token(
    client: httpx.Client, runtime: LocalRuntime, pub: str
) -> None:
    # Pinned to 1 first: under load, earlier calls may have made the pool grow.
    r = client.put(f"/v1/daisies/{pub}/workers", json={"number": 1}, headers=LOCAL)
    assert r.status_code == 200, r.text
    wait_pool(client, pub, ANON, 1)
    before = count_rows(runtime)
    for body in ({"number": 2}, {"number": 64}, {"number": "x"}, {}):
        r = client.put(f"/v1/daisies/{pub}/workers", json=body)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "unauthorized"
        assert "owner" in r.json()["error"]["message"]
        r = client.put(f"/v1/daisies/{pub}/workers", json=body, headers=BOB)
        assert r.status_code == 403, r.text
        assert r.json()["error"] == {
            "status": 403,
            "code": "forbidden",
            "message": "only the owner of Daisi 'local/Public Greeter' may change the workers"
            " of a Daisi",
        }
    for body in ({"worker_number": 2}, {"worker_number": 64}):
        r = client.post(f"/daisies/workers/{pub}", json=body)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        r = client.post(f"/daisies/workers/{pub}", json=body, headers=ALICE)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    # Nothing changed, and reading the count is open to everyone who sees the Daisi.
    for headers in (ANON, BOB, ALICE, LOCAL):
        assert pool_size(client, pub, headers) == 1
        r = client.get(f"/daisies/workers/{pub}/number", headers=headers)
        assert r.status_code == 200 and r.json() == 1
        assert client.get(f"/daisies/workers/{pub}/status", headers=headers).status_code == 200
    assert count_rows(runtime) == before

    # The owner may, within the server's cap.
    r = client.put(f"/v1/daisies/{pub}/workers", json={"number": 2}, headers=LOCAL)
    assert r.status_code == 200, r.text
    assert r.json()["number"] == 2
    cap = client.get("/capabilities").json()["max_workers"]
    r = client.put(f"/v1/daisies/{pub}/workers", json={"number": cap + 1}, headers=LOCAL)
    assert r.status_code == 422 and f"1 to {cap}" in r.json()["error"]["message"]
    r = client.post(f"/daisies/workers/{pub}", json={"worker_number": 1}, headers=LOCAL)
    assert r.status_code == 200, r.text
    wait_pool(client, pub, ANON, 1)


def test_workers_of_a_private_daisi_change_only_with_its_owners_token(
    client: httpx.Client, secret: str
) -> None:
    for headers in (ANON, BOB, LOCAL):
        r = client.put(f"/v1/daisies/{secret}/workers", json={"number": 2}, headers=headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = client.post(f"/daisies/workers/{secret}", json={"worker_number": 2}, headers=headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert pool_size(client, secret, ALICE) == 1
    r = client.put(f"/v1/daisies/{secret}/workers", json={"number": 2}, headers=ALICE)
    assert r.status_code == 200 and r.json()["number"] == 2
    r = client.post(f"/daisies/workers/{secret}", json={"worker_number": 1}, headers=ALICE)
    assert r.status_code == 200, r.text
    wait_pool(client, secret, ALICE, 1)


def test_pydaisi_workers_set_works_for_the_owner_only(
    runtime: LocalRuntime, client: httpx.Client, pub: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pyd = pytest.importorskip("pydaisi")
    monkeypatch.setenv("DAISI_BASE_URL", runtime.url)
    monkeypatch.delenv("DAISI_ACCESS_TOKEN", raising=False)
    stranger = pyd.Daisi("Public Greeter", access_token="tok-bob")
    assert "403" in stranger.workers.set(2)
    anonymous = pyd.Daisi("Public Greeter")
    assert "401" in anonymous.workers.set(2)
    assert anonymous.workers.number == 1
    owner = pyd.Daisi("Public Greeter", access_token="tok-local")
    assert "2" in owner.workers.set(2)
    wait_pool(client, pub, ANON, 2)
    assert owner.workers.number == 2
    owner.workers.set(1)
    wait_pool(client, pub, ANON, 1)


def test_a_server_without_tokens_lets_anyone_change_workers(tmp_path: Path) -> None:
    root = write_daisies(tmp_path / "daisies")
    with LocalRuntime(root) as rt, httpx.Client(base_url=rt.api, timeout=30) as c:
        did = c.get("/daisies/connect", params={"name": "Public Greeter"}).json()["id"]
        r = c.put(f"/v1/daisies/{did}/workers", json={"number": 2})
        assert r.status_code == 200 and r.json()["number"] == 2
        r = c.post(f"/daisies/workers/{did}", json={"worker_number": 1})
        assert r.status_code == 200
