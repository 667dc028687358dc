"""Bad input over raw HTTP (docs/protocol.md, "Hostile input"): precise 4xx replies,
nothing created, no 500.

Every test here checks, through an autouse fixture, that the number of executions
(and of uploaded blobs) in the store did not change and that the server still runs
a good call afterwards.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import dill
import httpx
import pytest
from tests.server.conftest import EXAMPLES

from daisi_async.testing import LocalRuntime

F = TypeVar("F", bound=Callable[..., Any])
ERROR_CODES = {
    "bad_request",
    "invalid_json",
    "invalid_arguments",
    "unauthorized",
    "not_found",
    "conflict",
    "payload_too_large",
    "daisi_broken",
    "not_ready",
    "forbidden",
    "idempotency_mismatch",
}


@pytest.fixture(scope="module")
def ids(client: httpx.Client) -> dict[str, str]:
    by_name = {d["name"]: d["id"] for d in client.get("/v1/daisies").json()["daisies"]}
    return {
        "add": by_name["Add Two Numbers"],
        "hello": by_name["Print Hello"],
        "fails": by_name["Always Fails"],
    }


@pytest.fixture(scope="module")
def done(client: httpx.Client, ids: dict[str, str]) -> str:
    """An execution (of Add Two Numbers) that finished, for routes that need one."""
    r = client.post(
        f"/v1/daisies/{ids['add']}/executions",
        params={"wait": 30},
        json={
            "endpoint": "compute",
            "arguments": {"firstNumber": {"value": 1}, "secondNumber": {"value": 2}},
        },
    )
    assert r.json()["status"] == "FINISHED"
    return str(r.json()["id"])


def counts(rt: LocalRuntime) -> tuple[int, int]:
    """(executions, uploaded blobs) in the store."""
    db = sqlite3.connect(f"file:{rt.store / 'daisi.sqlite3'}?mode=ro", uri=True)
    try:
        ex = db.execute("SELECT COUNT(*) FROM executions").fetchone()[0]
        blobs = db.execute("SELECT COUNT(*) FROM blobs WHERE key NOT LIKE 'r-%'").fetchone()[0]
        return int(ex), int(blobs)
    finally:
        db.close()


def good_call(client: httpx.Client, did: str) -> None:
    r = client.post(
        f"/v1/daisies/{did}/executions",
        params={"wait": 30},
        json={
            "endpoint": "compute",
            "arguments": {"firstNumber": {"value": 5}, "secondNumber": {"value": 6}},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["result"]["value"] == 11


def creates(executions: int, blobs: int) -> Callable[[F], F]:
    """Mark a test that creates executions or blobs on purpose."""

    def mark(fn: F) -> F:
        fn.creates = (executions, blobs)  # type: ignore[attr-defined]
        return fn

    return mark


@pytest.fixture(autouse=True)
def nothing_created(
    request: pytest.FixtureRequest,
    runtime: LocalRuntime,
    client: httpx.Client,
    ids: dict[str, str],
    done: str,
) -> Iterator[None]:
    expected = getattr(request.function, "creates", (0, 0))
    before = counts(runtime)
    yield
    after = counts(runtime)
    assert (after[0] - before[0], after[1] - before[1]) == expected, (
        "a bad request created an execution or a blob"
    )
    good_call(client, ids["add"])
    assert "unexpected error" not in runtime.logs(), runtime.logs()


def error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The error object of a reply, checked against the protocol."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    err: dict[str, Any] = r.json()["error"]
    assert err["status"] == status
    assert isinstance(err["message"], str) and err["message"]
    if code is not None:
        assert err["code"] == code, err
    return err


def values(**kwargs: Any) -> dict[str, dict[str, Any]]:
    return {k: {"value": v} for k, v in kwargs.items()}


def legacy_submit(ids: dict[str, str], endpoint: str = "compute") -> str:
    return f"/pebbles/{ids['add']}/executions/{endpoint}"


def v1_submit(ids: dict[str, str]) -> str:
    return f"/v1/daisies/{ids['add']}/executions"


# -- malformed and wrong-shaped JSON -------------------------------------------------------


JSON_ROUTES = [
    "legacy_submit",
    "v1_submit",
    "batch",
    "pickle",
    "map",
    "results_map",
    "wait",
    "workers_set",
    "v1_workers",
]


def route(name: str, ids: dict[str, str]) -> tuple[str, str]:
    did = ids["add"]
    return {
        "legacy_submit": ("POST", legacy_submit(ids)),
        "v1_submit": ("POST", v1_submit(ids)),
        "batch": ("POST", "/v1/executions"),
        "pickle": ("POST", "/pebbles/pickle"),
        "map": ("POST", f"/pebbles/{did}/map"),
        "results_map": ("POST", f"/pebbles/{did}/results_map"),
        "wait": ("POST", "/v1/executions/wait"),
        "workers_set": ("POST", f"/daisies/workers/{did}"),
        "v1_workers": ("PUT", f"/v1/daisies/{did}/workers"),
    }[name]


@pytest.mark.parametrize("name", JSON_ROUTES)
@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"firstNumber": 1,',
        b"",
        b"\xff\xfe\x00garbage",
        b"[" * 100_000,
        b'{"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    ],
    ids=["broken", "truncated", "empty", "binary", "deep-array", "deep-object"],
)
def test_malformed_json_is_400_invalid_json(
    client: httpx.Client, ids: dict[str, str], name: str, body: bytes
) -> None:
    method, path = route(name, ids)
    r = client.request(method, path, content=body, headers={"content-type": "application/json"})
    error(r, 400, "invalid_json")


@pytest.mark.parametrize("name", JSON_ROUTES)
@pytest.mark.parametrize("body", [[1, 2], "text", 3, None, True])
def test_wrong_shaped_json_is_400(
    client: httpx.Client, ids: dict[str, str], name: str, body: Any
) -> None:
    method, path = route(name, ids)
    r = client.request(method, path, content=json.dumps(body).encode())
    err = error(r, 400, "bad_request")
    assert "object" in err["message"]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/executions", {"executions": {"a": 1}}, "executions"),
        ("/v1/executions", {"executions": None}, "executions"),
        ("/v1/executions", {}, "executions"),
        ("/v1/executions/wait", {"ids": "abc"}, "ids"),
        ("/v1/executions/wait", {"ids": [1, 2]}, "ids"),
        ("/v1/executions/wait", {"ids": [], "timeout": -1}, "timeout"),
        ("/v1/executions/wait", {"ids": [], "timeout": "10"}, "timeout"),
        ("/v1/executions/wait", {"ids": [], "timeout": True}, "timeout"),
        ("/pebbles/pickle", {}, "data"),
    ],
)
def test_wrong_members_are_400_naming_them(
    client: httpx.Client, path: str, body: Any, param: str
) -> None:
    err = error(client.post(path, json=body), 400, "bad_request")
    assert err["param"] == param


def test_wrong_shaped_submission_members(client: httpx.Client, ids: dict[str, str]) -> None:
    path = v1_submit(ids)
    err = error(client.post(path, json={"arguments": {}}), 400, "bad_request")
    assert err["param"] == "endpoint"
    err = error(client.post(path, json={"endpoint": "compute", "arguments": [1, 2]}), 400)
    assert err["param"] == "arguments"
    # A v1 argument must be {"value"}, {"blob"} or {"execution"}.
    for arg in (5, "x", {}, {"value": 1, "blob": "k"}, {"other": 1}, [1]):
        body = {
            "endpoint": "compute",
            "arguments": {"firstNumber": arg, "secondNumber": {"value": 1}},
        }
        err = error(client.post(path, json=body), 422, "invalid_arguments")
        assert err["param"] == "firstNumber"
    r = client.post(
        f"/pebbles/{ids['add']}/map",
        json={"executions": [{"id": "not-a-uuid", "endpoint": "compute", "arguments": {}}]},
    )
    assert "UUID" in error(r, 400, "bad_request")["message"]
    r = client.post(f"/pebbles/{ids['add']}/map", json={"executions": ["x"]})
    error(r, 400, "bad_request")
    r = client.post(f"/pebbles/{ids['add']}/map", json={"executions": [{"arguments": {}}]})
    assert "endpoint" in error(r, 400, "bad_request")["message"]


def test_bad_query_parameters_are_400(client: httpx.Client, ids: dict[str, str], done: str) -> None:
    did = ids["add"]
    for value in ("abc", "-1", "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "1_0", "0x10"):
        for path in (f"/v1/executions/{done}", v1_submit(ids), "/v1/executions"):
            method = "GET" if path.endswith(done) else "POST"
            r = client.request(method, path, params={"wait": value}, json={"executions": []})
            err = error(r, 400, "bad_request")
            assert err["param"] == "wait" and "wait" in err["message"]
    r = client.get(f"/v1/executions/{done}", params={"wait": ""})
    assert r.status_code == 200
    for name in ("after", "limit"):
        for value in ("x", "-3", "1.5", "1e3", "+5", "1_0", "\u0663", " ", "0x1"):
            r = client.get(f"/v1/executions/{done}/logs", params={name: value})
            assert error(r, 400, "bad_request")["param"] == name, value
    for value in ("x", "-1", "1.5", "1e3", "+2", "\u0663"):
        r = client.get(f"/pebbles/{did}/executions/{done}/logs", params={"limit": value})
        assert error(r, 400, "bad_request")["param"] == "limit"
    for name in ("page", "pageSize"):
        for value in ("one", "0", "-1", "1.5", "2e2", "+1"):
            r = client.get("/daisies/collections/all/daisies", params={name: value})
            assert error(r, 400, "bad_request")["param"] == name, (name, value)
    for value in ("abc", "-4", "1.5", "1e3", "+1"):
        r = client.get(f"/v1/executions/{done}/events", headers={"Last-Event-ID": value})
        assert error(r, 400, "bad_request")["param"] == "Last-Event-ID"
        r = client.get(f"/v1/executions/{done}/events", params={"after": value})
        assert error(r, 400, "bad_request")["param"] == "after"
    r = client.get("/daisies/connect")
    assert error(r, 400, "bad_request")["param"] == "name"


def test_huge_numbers_in_query_are_not_500(
    client: httpx.Client, ids: dict[str, str], done: str
) -> None:
    # A count beyond what SQLite holds means "all" (limit) or "nothing after" (after).
    huge = "9" * 40
    r = client.get(f"/v1/executions/{done}/logs", params={"after": huge})
    assert r.status_code == 200 and r.json()["lines"] == []
    r = client.get(f"/v1/executions/{done}/logs", params={"limit": huge})
    assert r.status_code == 200 and r.json()["status"] == "FINISHED"
    r = client.get(f"/v1/executions/{done}/logs", params={"limit": "0" * 50 + "1"})
    assert r.status_code == 200 and len(r.json()["lines"]) <= 1
    r = client.get(f"/pebbles/{ids['add']}/executions/{done}/logs", params={"limit": huge})
    assert r.status_code == 200 and r.json() == []
    r = client.get(f"/v1/executions/{done}/events", headers={"Last-Event-ID": huge})
    assert r.status_code == 200 and "id:" not in r.text
    r = client.get(f"/v1/executions/{done}/events", headers={"Last-Event-ID": "0"})
    assert r.status_code == 200 and r.text.startswith("id: 1\n")
    r = client.get("/daisies/collections/all/daisies", params={"page": huge, "pageSize": huge})
    assert r.status_code == 200 and r.json()["data"]["data"] == []
    # Seconds beyond the 60 s cap are the cap; a number no float holds is refused.
    r = client.get(f"/v1/executions/{done}", params={"wait": "1e300"})
    assert r.status_code == 200 and r.json()["status"] == "FINISHED"
    r = client.get(f"/v1/executions/{done}", params={"wait": "9" * 401})
    assert error(r, 400, "bad_request")["param"] == "wait"


@pytest.mark.parametrize(
    "raw",
    [
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"1e400",
        b"-1e400",
        b"1" + b"0" * 400,
        b"-1",
        b"-0.5",
        b'"10"',
        b"true",
        b"false",
        b"null",
        b"[1]",
        b"{}",
    ],
)
def test_bad_timeout_in_wait_is_400_before_the_stream(
    client: httpx.Client, done: str, raw: bytes
) -> None:
    for ids in (b"[]", f'["{done}"]'.encode()):
        body = b'{"ids": ' + ids + b', "timeout": ' + raw + b"}"
        err = error(client.post("/v1/executions/wait", content=body), 400, "bad_request")
        assert err["param"] == "timeout" and "timeout" in err["message"]
    # Huge but finite: the 60 s cap, and a whole stream.
    r = client.post("/v1/executions/wait", json={"ids": [done], "timeout": 10**300})
    assert r.status_code == 200
    assert [json.loads(x)["type"] for x in r.text.splitlines()] == ["done", "end"]


WORKER_NUMBERS: list[bytes] = [
    b"0",
    b"-1",
    b"65",
    b"1000000000",
    b"1" + b"0" * 400,
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e400",
    b'"2"',
    b"2.5",
    b"1.0",
    b"null",
    b"true",
    b"false",
    b"[2]",
    b"{}",
]


@pytest.mark.parametrize("raw", WORKER_NUMBERS, ids=lambda b: b.decode()[:12])
def test_workers_number_out_of_range_is_422(
    client: httpx.Client, ids: dict[str, str], raw: bytes
) -> None:
    did = ids["hello"]
    r = client.post(f"/daisies/workers/{did}", content=b'{"worker_number": ' + raw + b"}")
    assert error(r, 422, "invalid_arguments")["param"] == "worker_number"
    r = client.put(f"/v1/daisies/{did}/workers", content=b'{"number": ' + raw + b"}")
    assert error(r, 422, "invalid_arguments")["param"] == "number"
    assert client.get(f"/daisies/workers/{did}/number").json() == 1


def test_workers_over_the_server_cap_is_422_naming_it(
    client: httpx.Client, ids: dict[str, str]
) -> None:
    did = ids["hello"]
    cap = client.get("/capabilities").json()["max_workers"]
    assert cap == (os.cpu_count() or 1)
    for n in (cap + 1, 64):
        r = client.post(f"/daisies/workers/{did}", json={"worker_number": n})
        err = error(r, 422, "invalid_arguments")
        assert err["param"] == "worker_number" and f"1 to {cap}" in err["message"]
        assert "--max-workers" in err["message"]
        r = client.put(f"/v1/daisies/{did}/workers", json={"number": n})
        err = error(r, 422, "invalid_arguments")
        assert err["param"] == "number" and f"1 to {cap}" in err["message"]
    r = client.post(f"/daisies/workers/{did}", json={})
    assert "missing" in error(r, 422, "invalid_arguments")["message"]
    assert client.get(f"/daisies/workers/{did}/number").json() == 1


# -- unknown things: 404 with a message --------------------------------------------------


def test_unknown_daisi_is_404(client: httpx.Client) -> None:
    missing = str(uuid.uuid4())
    err = error(client.get("/daisies/connect", params={"name": "No Such Daisi"}), 404, "not_found")
    assert "No Such Daisi" in err["message"]
    error(client.get("/daisies/connect", params={"name": "local/No Such Daisi"}), 404, "not_found")
    error(client.get(f"/pebbles/{missing}"), 404, "not_found")
    error(client.get(f"/pebbles/{missing}/endpoints"), 404, "not_found")
    error(client.post(f"/pebbles/{missing}/executions/compute", json={}), 404, "not_found")
    error(client.post(f"/pebbles/{missing}/map", json={"executions": []}), 404, "not_found")
    error(client.get(f"/daisies/workers/{missing}/number"), 404, "not_found")
    error(client.post(f"/daisies/workers/{missing}", json={"worker_number": 2}), 404)
    err = error(client.get("/v1/daisies/nobody%2Fnothing"), 404, "not_found")
    assert "nobody/nothing" in err["message"]
    error(client.get(f"/v1/daisies/{missing}"), 404, "not_found")
    r = client.post(f"/v1/daisies/{missing}/executions", json={"endpoint": "compute"})
    error(r, 404, "not_found")
    error(client.get(f"/v1/daisies/{missing}/workers"), 404, "not_found")
    error(client.get("/no/such/route"), 404, "not_found")


def test_unknown_endpoint_is_404(client: httpx.Client, ids: dict[str, str]) -> None:
    err = error(client.post(legacy_submit(ids, "nope"), json={}), 404, "not_found")
    assert "nope" in err["message"]
    r = client.post(v1_submit(ids), json={"endpoint": "nope", "arguments": {}})
    assert "nope" in error(r, 404, "not_found")["message"]
    # Not an endpoint: private helpers and imported names.
    r = client.post(v1_submit(ids), json={"endpoint": "__init__", "arguments": {}})
    error(r, 404, "not_found")
    r = client.post(
        f"/pebbles/{ids['add']}/map",
        json={"executions": [{"endpoint": "nope", "arguments": {}}]},
    )
    error(r, 404, "not_found")


def test_unknown_execution_is_404(client: httpx.Client, ids: dict[str, str], done: str) -> None:
    did = ids["add"]
    missing = str(uuid.uuid4())
    for path in (
        f"/pebbles/{did}/executions/{missing}/status",
        f"/pebbles/{did}/executions/{missing}/logs",
        f"/pebbles/{did}/executions/{missing}/results",
        f"/v1/executions/{missing}",
        f"/v1/executions/{missing}/result",
        f"/v1/executions/{missing}/logs",
        f"/v1/executions/{missing}/events",
    ):
        err = error(client.get(path), 404, "not_found")
        assert missing in err["message"]
    error(client.post(f"/v1/executions/{missing}/cancel"), 404, "not_found")
    r = client.post(f"/pebbles/{did}/results_map", json={"executions": [{"id": missing}]})
    error(r, 404, "not_found")
    # An execution asked for under another Daisi is not found either.
    other = ids["hello"]
    error(client.get(f"/pebbles/{other}/executions/{done}/status"), 404, "not_found")


# -- arguments: 422 naming the parameter ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "param", "words"),
    [
        ({"firstNumber": 1}, "secondNumber", "missing"),
        ({}, "firstNumber", "missing"),
        ({"firstNumber": 1, "secondNumber": 2, "third": 3}, "third", "unexpected"),
        ({"firstNumber": 1, "secondNumber": 2, "\x00": 3}, "\x00", "unexpected"),
    ],
)
def test_missing_or_unexpected_arguments_are_422(
    client: httpx.Client, ids: dict[str, str], args: dict[str, Any], param: str, words: str
) -> None:
    err = error(client.post(legacy_submit(ids), json=args), 422, "invalid_arguments")
    assert err["param"] == param
    assert words in err["message"] and repr(param) in err["message"]
    v1_args = {k: {"value": v} for k, v in args.items()}
    r = client.post(v1_submit(ids), json={"endpoint": "compute", "arguments": v1_args})
    err = error(r, 422, "invalid_arguments")
    assert err["param"] == param and words in err["message"]
    r = client.post(
        f"/pebbles/{ids['add']}/map",
        json={"executions": [{"endpoint": "compute", "arguments": args}]},
    )
    assert error(r, 422, "invalid_arguments")["param"] == param


def test_map_is_all_or_nothing(client: httpx.Client, ids: dict[str, str]) -> None:
    good = {"endpoint": "compute", "arguments": {"firstNumber": 1, "secondNumber": 2}}
    bad = {"endpoint": "compute", "arguments": {"firstNumber": 1}}
    r = client.post(f"/pebbles/{ids['add']}/map", json={"executions": [good, good, bad]})
    assert error(r, 422, "invalid_arguments")["param"] == "secondNumber"


@pytest.mark.parametrize(
    "key",
    [
        "0123456789abcdef0123456789abcdef",
        "5c0ffee0-0000-4000-8000-00000000dead",  # a well-formed id of nothing
        "../../etc/passwd",
        "",
        "\x00",
        "a" * 5000,
        "r-../daisi.sqlite3",
    ],
)
def test_dangling_lookup_is_422(client: httpx.Client, ids: dict[str, str], key: str) -> None:
    r = client.post(legacy_submit(ids), json={"firstNumber": f"lookup:{key}", "secondNumber": 1})
    err = error(r, 422, "invalid_arguments")
    assert err["param"] == "firstNumber"
    assert "lookup:" in err["message"]


def test_unknown_blob_or_execution_argument_is_422(
    client: httpx.Client, ids: dict[str, str]
) -> None:
    for arg in (
        {"blob": uuid.uuid4().hex},
        {"blob": "../../etc/passwd"},
        {"blob": 5},
        {"execution": str(uuid.uuid4())},
        {"execution": "\x00" * 300},
        {"execution": None},
    ):
        body = {
            "endpoint": "compute",
            "arguments": {"firstNumber": {"value": 1}, "secondNumber": arg},
        }
        err = error(client.post(v1_submit(ids), json=body), 422, "invalid_arguments")
        assert err["param"] == "secondNumber"


def test_idempotency_key_out_of_bounds_is_400(client: httpx.Client, ids: dict[str, str]) -> None:
    body = {
        "endpoint": "compute",
        "arguments": {"firstNumber": {"value": 1}, "secondNumber": {"value": 1}},
    }
    r = client.post(v1_submit(ids), json=body, headers={"Idempotency-Key": "k" * 201})
    error(r, 400, "bad_request")
    item = {"daisi_id": ids["add"], **body, "idempotency_key": ""}
    r = client.post("/v1/executions", json={"executions": [item, {**item, "idempotency_key": 7}]})
    assert r.status_code == 200
    assert [x["error"]["status"] for x in r.json()["results"]] == [400, 400]


def test_batch_of_bad_items_creates_nothing(client: httpx.Client, ids: dict[str, str]) -> None:
    items: list[Any] = [
        {"daisi_id": ids["add"], "endpoint": "compute", "arguments": {"firstNumber": {"value": 1}}},
        {"daisi_id": str(uuid.uuid4()), "endpoint": "compute", "arguments": {}},
        {"daisi_id": 5, "endpoint": "compute"},
        {"daisi_id": ids["add"], "endpoint": "nope"},
        {"daisi_id": "../../etc/passwd", "endpoint": "compute"},
        [],
    ]
    r = client.post("/v1/executions", json={"executions": items})
    assert r.status_code == 200
    statuses = [x["error"]["status"] for x in r.json()["results"]]
    assert statuses == [422, 404, 400, 404, 404, 400]
    r = client.post("/v1/executions", params={"wait": 1}, json={"executions": items})
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert lines[0]["type"] == "submitted" and all("error" in x for x in lines[0]["results"])
    assert lines[-1] == {"type": "end", "pending": []}


@creates(executions=1, blobs=0)
def test_idempotency_key_reused_for_another_request_is_409(
    client: httpx.Client, ids: dict[str, str]
) -> None:
    key = f"reuse-{uuid.uuid4()}"
    args = {"firstNumber": {"value": 1}, "secondNumber": {"value": 2}}
    body = {"endpoint": "compute", "arguments": args}
    headers = {"Idempotency-Key": key}
    first = client.post(v1_submit(ids), json=body, headers=headers)
    assert first.status_code == 201, first.text
    eid = first.json()["id"]
    others = [
        (
            v1_submit(ids),
            {"endpoint": "compute", "arguments": {**args, "secondNumber": {"value": 3}}},
        ),
        (
            v1_submit(ids),
            {"endpoint": "compute", "arguments": values(secondNumber=1, firstNumber=2)},
        ),
        (
            v1_submit(ids),
            {"endpoint": "compute", "arguments": {**args, "secondNumber": {"value": 2.0}}},
        ),
        (f"/v1/daisies/{ids['hello']}/executions", {"endpoint": "hello", "arguments": {}}),
    ]
    for path, other in others:
        err = error(client.post(path, json=other, headers=headers), 409, "idempotency_mismatch")
        assert key in err["message"] and eid in err["message"]
    # In a batch, the item with the reused key fails alone.
    item = {"daisi_id": ids["add"], "idempotency_key": key, **others[0][1]}
    r = client.post("/v1/executions", json={"executions": [item]})
    assert r.status_code == 200
    (result,) = r.json()["results"]
    assert result["error"]["status"] == 409 and result["error"]["code"] == "idempotency_mismatch"
    # The same request with the same key is still the first execution; key order and
    # spacing of the JSON don't matter.
    same = json.dumps({"arguments": dict(reversed(args.items())), "endpoint": "compute"}, indent=2)
    r = client.post(v1_submit(ids), content=same.encode(), headers=headers)
    assert r.status_code == 200 and r.json()["id"] == eid


# -- pickle ------------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["not base64!!", "abc", "é", 5, None, ["YQ=="]])
def test_invalid_base64_in_pickle_is_400(client: httpx.Client, data: Any) -> None:
    err = error(client.post("/pebbles/pickle", json={"data": data}), 400, "bad_request")
    assert "base64" in err["message"]


@creates(executions=1, blobs=1)
def test_undecodable_pickle_fails_the_execution_naming_the_argument(
    client: httpx.Client, ids: dict[str, str]
) -> None:
    # The server stores the bytes without opening them; the worker can't unpickle them.
    r = client.post("/pebbles/pickle", json={"data": base64.b64encode(b"not a pickle").decode()})
    assert r.status_code == 200
    key = r.text
    r = client.post(
        f"/v1/daisies/{ids['hello']}/executions",
        params={"wait": 30},
        json={"endpoint": "hello", "arguments": {"name": {"blob": key}}},
    )
    assert r.status_code == 201
    body = r.json()
    assert body["status"] == "FAILED"
    assert body["error"]["type"] == "daisi.ArgumentError"
    assert "'name'" in body["error"]["message"]


# -- path tricks ---------------------------------------------------------------------------


PATH_TRICKS = [
    "/pebble-api/pebbles/../../etc/passwd",
    "/pebble-api/pebbles/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/pebble-api/pebbles/%2e%2e/%2e%2e/etc/passwd",
    "/pebble-api/pebbles/..%2F..%2Fetc%2Fpasswd/endpoints",
    "/pebble-api/v1/daisies/..%2F..%2Fetc%2Fpasswd",
    "/pebble-api/v1/daisies/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/pebble-api/v1/blobs/..%2f..%2fdaisi.sqlite3",
    "/pebble-api/v1/blobs/..",
    "/pebble-api/v1/blobs/%2e%2e",
    "/pebble-api/v1/blobs/daisi.sqlite3",
    "/pebble-api/v1/blobs/%00",
    "/pebble-api/v1/blobs/%ff%fe",
    "/pebble-api/v1/executions/..%2f..%2f..%2fetc%2fpasswd",
    "/pebble-api/v1/executions/%00",
    "/pebble-api/v1/executions/%00/result",
    "/pebble-api/v1/executions/%C0%AF%C0%AF/logs",
    "/pebble-api/v1/daisies/%00",
    "/pebble-api/v1/daisies/%25",
    "/pebble-api/pebbles/%00",
    "/pebble-api/pebbles/%00/endpoints",
    "/pebble-api/daisies/connect?name=%00",
    "/pebble-api/daisies/connect?name=..%2F..%2Fetc%2Fpasswd",
    "/pebble-api/daisies/connect?name=%ff%fe",
    "/pebble-api/daisies/workers/..%2f..%2fetc/number",
    "/pebble-api/pebbles/" + "a" * 5000,
    "/pebble-api/v1/executions/" + "a" * 5000,
    "/pebble-api/v1/blobs/" + "b" * 5000,
    "/pebble-api/v1/daisies/" + "c" * 5000,
    "/pebble-api/daisies/connect?name=" + "d" * 5000,
]


@pytest.mark.parametrize("target", PATH_TRICKS, ids=lambda t: t[12:60])
def test_path_tricks_get_are_4xx(client: httpx.Client, runtime: LocalRuntime, target: str) -> None:
    r = client.request("GET", runtime.url, extensions={"target": target.encode()})
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert "root:" not in r.text and "SQLite format" not in r.text
    assert r.json()["error"]["code"] in ERROR_CODES | {"method_not_allowed"}


@pytest.mark.parametrize(
    "target",
    [
        "/pebble-api/pebbles/..%2F..%2Fetc%2Fpasswd/executions/compute",
        "/pebble-api/pebbles/%00/executions/compute",
        "/pebble-api/pebbles/{add}/executions/..%2F..%2Fetc%2Fpasswd",
        "/pebble-api/pebbles/{add}/executions/%00",
        "/pebble-api/pebbles/{add}/executions/" + "e" * 5000,
        "/pebble-api/v1/daisies/..%2F..%2Fetc%2Fpasswd/executions",
        "/pebble-api/v1/daisies/%00/executions",
        "/pebble-api/v1/daisies/" + "f" * 5000 + "/executions",
        "/pebble-api/pebbles/%00/map",
        "/pebble-api/v1/executions/%00/cancel",
    ],
    ids=lambda t: t[12:60],
)
def test_path_tricks_post_are_4xx(
    client: httpx.Client, runtime: LocalRuntime, ids: dict[str, str], target: str
) -> None:
    body = json.dumps(
        {
            "endpoint": "compute",
            "arguments": {},
            "firstNumber": 1,
            "secondNumber": 2,
            "executions": [],
        }
    ).encode()
    r = client.request(
        "POST",
        runtime.url,
        content=body,
        headers={"content-type": "application/json"},
        extensions={"target": target.replace("{add}", ids["add"]).encode()},
    )
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.json()["error"]["code"] in ERROR_CODES | {"method_not_allowed"}


def test_nul_and_long_names_in_json(client: httpx.Client, ids: dict[str, str]) -> None:
    r = client.post(v1_submit(ids), json={"endpoint": "comp\x00ute", "arguments": {}})
    error(r, 404, "not_found")
    r = client.post(v1_submit(ids), json={"endpoint": "x" * 100_000, "arguments": {}})
    error(r, 404, "not_found")
    r = client.post("/v1/executions/wait", json={"ids": ["\x00", "../x", "a" * 10_000]})
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert [x["type"] for x in lines] == ["error", "error", "error", "end"]
    assert all(x["error"]["status"] == 404 for x in lines[:3])


def test_wrong_method_is_405(client: httpx.Client, ids: dict[str, str]) -> None:
    r = client.get(legacy_submit(ids))
    assert r.status_code == 405
    r = client.delete(f"/v1/daisies/{ids['add']}/workers")
    assert r.status_code == 405
    assert r.json()["error"]["status"] == 405


# -- oversize bodies ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> Iterator[LocalRuntime]:
    """A runtime that accepts bodies of at most 1 KB."""
    with LocalRuntime(EXAMPLES, extra_args=["--max-body", "1KB"]) as rt:
        yield rt


def test_oversize_bodies_are_413(small: LocalRuntime) -> None:
    big_text = "x" * 4000
    big_blob = dill.dumps(big_text)
    with httpx.Client(base_url=small.api, timeout=30) as c:
        assert c.get("/capabilities").json()["max_body_bytes"] == 1024
        did = c.get("/daisies/connect", params={"name": "Print Hello"}).json()["id"]
        before = counts(small)

        def chunked(data: bytes) -> Iterator[bytes]:
            for i in range(0, len(data), 500):
                yield data[i : i + 500]

        requests: list[tuple[str, str, bytes]] = [
            ("POST", f"/pebbles/{did}/executions/hello", json.dumps({"name": big_text}).encode()),
            (
                "POST",
                f"/v1/daisies/{did}/executions",
                json.dumps(
                    {"endpoint": "hello", "arguments": {"name": {"value": big_text}}}
                ).encode(),
            ),
            (
                "POST",
                "/v1/executions",
                json.dumps(
                    {
                        "executions": [
                            {
                                "daisi_id": did,
                                "endpoint": "hello",
                                "arguments": {"name": {"value": big_text}},
                            }
                        ]
                    }
                ).encode(),
            ),
            (
                "POST",
                "/pebbles/pickle",
                json.dumps({"data": base64.b64encode(big_blob).decode()}).encode(),
            ),
            (
                "POST",
                f"/pebbles/{did}/map",
                json.dumps(
                    {"executions": [{"endpoint": "hello", "arguments": {"name": big_text}}]}
                ).encode(),
            ),
            ("POST", "/v1/blobs", big_blob),
        ]
        for method, path, body in requests:
            # A declared Content-Length over the limit...
            r = c.request(method, path, content=body)
            err = error(r, 413, "payload_too_large")
            assert "1024" in err["message"]
            # ... and a chunked upload without a length that goes over it.
            r = c.request(method, path, content=chunked(body))
            assert "content-length" not in r.request.headers
            error(r, 413, "payload_too_large")
        assert counts(small) == before
        leftovers = [p.name for p in (small.store / "blobs").iterdir()]
        assert not [n for n in leftovers if n.endswith(".part")], leftovers

        # Under the limit all is well, chunked or not.
        r = c.post(f"/pebbles/{did}/executions/hello", json={"name": "small"})
        assert r.status_code == 201
        small_blob = dill.dumps("tiny")
        r = c.post("/v1/blobs", content=chunked(small_blob))
        assert r.status_code == 201 and r.json()["size"] == len(small_blob)
        r = c.post(
            f"/v1/daisies/{did}/executions",
            params={"wait": 30},
            json={"endpoint": "hello", "arguments": {"name": {"blob": r.json()["key"]}}},
        )
        assert r.json()["result"]["value"] == "Hello tiny!"
        assert "unexpected error" not in small.logs()
