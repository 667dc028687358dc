"""The legacy routes, exactly as ``pydaisi==0.3.3.0`` calls them, over raw HTTP.

A real ``daisi serve`` process (examples/daisies, up to 3 workers per Daisi whatever
the number of cores) answers; the client is plain httpx.
"""

from __future__ import annotations

import base64
import codecs
import time
import uuid
from collections.abc import Iterator
from typing import Any

import dill
import httpx
import numpy as np
import pytest
from tests.server.conftest import EXAMPLES
from tests.support.v1_calls import count_executions

from daisi_async.server.registry import NAMESPACE
from daisi_async.testing import LocalRuntime

TERMINAL = ("FINISHED", "FAILED")


@pytest.fixture(scope="module")
def runtime() -> Iterator[LocalRuntime]:
    with LocalRuntime(EXAMPLES, extra_args=["--max-workers", "3"]) as rt:
        yield rt


@pytest.fixture(scope="module")
def ids(client: httpx.Client) -> dict[str, str]:
    """Daisi ids by short name, found through ``/daisies/connect``."""
    names = {
        "add": "Add Two Numbers",
        "fails": "Always Fails",
        "serialize": "Daisi Serialize",
        "live": "Live Logging",
        "hello": "Print Hello",
    }
    out = {}
    for short, name in names.items():
        r = client.get("/daisies/connect", params={"name": name})
        assert r.status_code == 200, r.text
        out[short] = r.json()["id"]
    return out


def b64dill(obj: Any) -> str:
    """What pydaisi sends: base64 of dill protocol 5 (with newlines, as codecs makes it)."""
    return codecs.encode(dill.dumps(obj, protocol=5), "base64").decode()


def undill(text: str) -> Any:
    return dill.loads(base64.b64decode(text))


def submit(client: httpx.Client, did: str, endpoint: str, **args: Any) -> str:
    r = client.post(f"/pebbles/{did}/executions/{endpoint}", json=args)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id"}
    uuid.UUID(body["id"])
    return str(body["id"])


def status(client: httpx.Client, did: str, eid: str) -> str:
    r = client.get(f"/pebbles/{did}/executions/{eid}/status")
    assert r.status_code == 200, r.text
    value = r.json()
    assert value in ("NOT_STARTED", "RUNNING", "FINISHED", "FAILED")
    return str(value)


def wait_status(client: httpx.Client, did: str, eid: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = status(client, did, eid)
        if value in TERMINAL:
            return value
        time.sleep(0.03)
    raise AssertionError(f"execution {eid} did not end in {timeout} s")


def results(client: httpx.Client, did: str, eid: str, download: bool = True) -> dict[str, Any]:
    r = client.get(
        f"/pebbles/{did}/executions/{eid}/results",
        params={"download": download, "all_fields": True},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"status", "message", "results"}
    return dict(body)


def value_of(client: httpx.Client, did: str, eid: str) -> Any:
    assert wait_status(client, did, eid) == "FINISHED", results(client, did, eid)
    return undill(results(client, did, eid)["results"])


# -- connect and describe ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Add Two Numbers",
        "add two numbers",
        "ADD TWO NUMBERS",
        "local/Add Two Numbers",
        "LOCAL/add two numbers",
        "add-two-numbers",
    ],
)
def test_connect_by_name_and_owner_name_case_insensitive(client: httpx.Client, name: str) -> None:
    r = client.get("/daisies/connect", params={"name": name})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == str(uuid.uuid5(NAMESPACE, "local/add two numbers"))
    assert body["name"] == "Add Two Numbers"
    assert body["owner"] == "local"
    assert body["description"] == "Adds two numbers: the smallest possible Daisi."
    assert [ep["name"] for ep in body["endpoints"]] == ["compute"]
    assert [p["id"] for p in body["endpoints"][0]["schema"]] == ["firstNumber", "secondNumber"]


def test_connect_owner_name_of_non_default_owner(client: httpx.Client) -> None:
    r = client.get("/daisies/connect", params={"name": "exampledaisies/daisi serialize"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Daisi Serialize"
    assert r.json()["owner"] == "exampledaisies"
    # A wrong owner is not found.
    r = client.get("/daisies/connect", params={"name": "local/Daisi Serialize"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_pebble_by_id_matches_connect(client: httpx.Client, ids: dict[str, str]) -> None:
    connected = client.get("/daisies/connect", params={"name": "Print Hello"}).json()
    r = client.get(f"/pebbles/{ids['hello']}")
    assert r.status_code == 200, r.text
    assert r.json() == connected
    assert r.json()["name"] == "Print Hello"
    # Ids are case-insensitive UUIDs.
    r = client.get(f"/pebbles/{ids['hello'].upper()}")
    assert r.status_code == 200
    assert r.json()["id"] == ids["hello"]


def test_endpoints_schema_in_parameter_order(client: httpx.Client, ids: dict[str, str]) -> None:
    r = client.get(f"/pebbles/{ids['serialize']}/endpoints")
    assert r.status_code == 200, r.text
    eps = {ep["name"]: ep for ep in r.json()}
    assert list(eps) == ["compute", "make_stack"]
    assert [p["id"] for p in eps["compute"]["schema"]] == ["map_stack", "map", "grid_stack", "grid"]
    assert [p["id"] for p in eps["make_stack"]["schema"]] == ["nx", "ny", "layers"]
    nx = eps["make_stack"]["schema"][0]
    assert nx["default"] == 4 and nx["required"] is False and nx["default_repr"] == "4"
    assert nx["kind"] == "POSITIONAL_OR_KEYWORD"
    assert nx["description"] == "Columns of each map."

    live = client.get(f"/pebbles/{ids['live']}/endpoints").json()
    schema = live[0]["schema"]
    assert [(p["id"], p["required"], p["default"]) for p in schema] == [
        ("firstNumber", True, None),
        ("secondNumber", True, None),
        ("delay", False, 3),
    ]
    assert schema[0]["annotation"] == "float"


# -- submit, status, logs, results -----------------------------------------------------


def test_submit_status_results_download_true_and_false(
    client: httpx.Client, ids: dict[str, str]
) -> None:
    eid = submit(client, ids["add"], "compute", firstNumber=5, secondNumber=6)
    assert wait_status(client, ids["add"], eid) == "FINISHED"
    res = results(client, ids["add"], eid, download=True)
    assert res["status"] == "FINISHED"
    assert undill(res["results"]) == 11
    res = results(client, ids["add"], eid, download=False)
    assert res == {"status": "FINISHED", "message": None, "results": f"lookup:{eid}"}


def test_running_status_logs_with_and_without_limit(
    client: httpx.Client, ids: dict[str, str]
) -> None:
    did = ids["live"]
    eid = submit(client, did, "live_log_test", firstNumber=2, secondNumber=3, delay=1.5)
    # While it works: RUNNING (QUEUED is reported as RUNNING too); results not ready.
    assert status(client, did, eid) == "RUNNING"
    early = results(client, did, eid)
    assert early["status"] == "RUNNING" and early["results"] is None
    assert wait_status(client, did, eid) == "FINISHED"

    r = client.get(f"/pebbles/{did}/executions/{eid}/logs")
    assert r.status_code == 200, r.text
    lines = r.json()
    assert isinstance(lines, list) and all(isinstance(x, str) for x in lines)
    steps = [x for x in lines if x.startswith("Step ")]
    assert steps == [
        "Step 1/3: 0.5 s elapsed",
        "Step 2/3: 1.0 s elapsed",
        "Step 3/3: 1.5 s elapsed",
    ]
    assert any("adding 2 and 3 over 1.5 seconds" in x for x in lines)
    assert lines[-1] == "Done: 2 + 3 = 5"

    r = client.get(f"/pebbles/{did}/executions/{eid}/logs", params={"limit": 2})
    assert r.json() == lines[-2:]
    r = client.get(f"/pebbles/{did}/executions/{eid}/logs", params={"limit": 1000})
    assert r.json() == lines

    res = results(client, did, eid)
    assert res["message"] == "Done: 2 + 3 = 5"
    assert undill(res["results"]) == 5


def test_failure_results_is_dill_of_error_label(client: httpx.Client, ids: dict[str, str]) -> None:
    did = ids["fails"]
    eid = submit(client, did, "divide")
    assert wait_status(client, did, eid) == "FAILED"
    res = results(client, did, eid, download=True)
    assert res["status"] == "FAILED"
    assert res["message"] == "dividing 1 by 0"
    failure = undill(res["results"])
    assert failure["label"] == "ERROR"
    assert failure["data"].startswith("Traceback (most recent call last):")
    assert "ZeroDivisionError: division by zero" in failure["data"]
    assert "numerator / denominator" in failure["data"]

    eid = submit(client, did, "fail", message="custom message")
    assert wait_status(client, did, eid) == "FAILED"
    failure = undill(results(client, did, eid)["results"])
    assert failure["label"] == "ERROR"
    assert "ValueError: custom message" in failure["data"]


# -- stored objects and chaining ---------------------------------------------------------


def test_pickle_returns_plain_text_key_usable_as_lookup(
    client: httpx.Client, ids: dict[str, str]
) -> None:
    r = client.post("/pebbles/pickle", json={"data": b64dill("pickled world")})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    key = r.text
    assert key and "lookup" not in key and '"' not in key
    eid = submit(client, ids["hello"], "hello", name=f"lookup:{key}")
    assert value_of(client, ids["hello"], eid) == "Hello pickled world!"
    # The same stored object can be used again.
    eid = submit(client, ids["hello"], "hello", name=f"lookup:{key}")
    assert value_of(client, ids["hello"], eid) == "Hello pickled world!"


STACK_SOURCE = """
class Stack:
    def __init__(self):
        self.layers = []

    def add_layer(self, layer):
        self.layers.append(layer)
        return f"added layer {len(self.layers)}"
"""


def _stack_class() -> type:
    """A stack class that dill sends by value (as a notebook's class would be)."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(STACK_SOURCE, namespace)
    cls: type = namespace["Stack"]
    return cls


def test_daisi_serialize_with_dill_pickled_objects(
    client: httpx.Client, ids: dict[str, str]
) -> None:
    stack = _stack_class()()
    layer = np.arange(6.0).reshape(2, 3)
    stack_key = client.post("/pebbles/pickle", json={"data": b64dill(stack)}).text
    map_key = client.post("/pebbles/pickle", json={"data": b64dill(layer)}).text
    did = ids["serialize"]
    eid = submit(client, did, "compute", map_stack=f"lookup:{stack_key}", map=f"lookup:{map_key}")
    out = value_of(client, did, eid)
    assert type(out).__name__ == "Stack"
    assert len(out.layers) == 1
    np.testing.assert_array_equal(out.layers[0], layer)
    logs = client.get(f"/pebbles/{did}/executions/{eid}/logs").json()
    assert logs == ["added layer 1"]

    # make_stack returns the Daisi's own class, by value.
    eid = submit(client, did, "make_stack", nx=3, ny=2, layers=2)
    made = value_of(client, did, eid)
    assert type(made).__name__ == "MapStack"
    assert made.nb_layers == 2
    assert made.maps[0].shape == (2, 3)


def test_lookup_of_finished_execution(client: httpx.Client, ids: dict[str, str]) -> None:
    up = submit(client, ids["add"], "compute", firstNumber=1, secondNumber=2)
    assert wait_status(client, ids["add"], up) == "FINISHED"
    down = submit(client, ids["add"], "compute", firstNumber=f"lookup:{up}", secondNumber=10)
    assert value_of(client, ids["add"], down) == 13
    # Across Daisies: the result of one feeds another.
    hello = submit(client, ids["hello"], "hello", name=f"lookup:{up}")
    assert value_of(client, ids["hello"], hello) == "Hello 3!"


def test_lookup_of_running_execution_waits(client: httpx.Client, ids: dict[str, str]) -> None:
    up = submit(client, ids["live"], "live_log_test", firstNumber=2, secondNumber=3, delay=1.0)
    down = submit(client, ids["add"], "compute", firstNumber=f"lookup:{up}", secondNumber=10)
    time.sleep(0.3)
    assert status(client, ids["live"], up) == "RUNNING"
    assert status(client, ids["add"], down) == "RUNNING"
    assert results(client, ids["add"], down)["results"] is None
    assert value_of(client, ids["add"], down) == 15
    # The downstream ended after its upstream.
    assert status(client, ids["live"], up) == "FINISHED"


def test_lookup_of_failed_execution_fails_naming_it(
    client: httpx.Client, ids: dict[str, str]
) -> None:
    up = submit(client, ids["fails"], "divide", numerator=3, denominator=0)
    down = submit(client, ids["add"], "compute", firstNumber=f"lookup:{up}", secondNumber=1)
    assert wait_status(client, ids["add"], down) == "FAILED"
    failure = undill(results(client, ids["add"], down)["results"])
    assert failure["label"] == "ERROR"
    assert up in failure["data"]
    assert "firstNumber" in failure["data"]
    assert "ZeroDivisionError" in failure["data"]
    assert results(client, ids["add"], down, download=False)["results"] is not None


# -- map / results_map ---------------------------------------------------------------------


def test_map_with_client_ids_and_results_map(
    client: httpx.Client, ids: dict[str, str], runtime: LocalRuntime
) -> None:
    did = ids["add"]
    chosen = [str(uuid.uuid4()) for _ in range(5)]
    body = {
        "executions": [
            {"id": eid, "endpoint": "compute", "arguments": {"firstNumber": i, "secondNumber": 100}}
            for i, eid in enumerate(chosen)
        ]
    }
    r = client.post(f"/pebbles/{did}/map", json=body)
    assert r.status_code == 201, r.text
    assert r.json() == {"executions": [{"id": eid} for eid in chosen]}

    r = client.post(
        f"/pebbles/{did}/results_map",
        json={"executions": [{"id": eid} for eid in chosen], "download": True},
    )
    assert r.status_code == 200, r.text
    rows = r.json()
    assert [row["id"] for row in rows] == chosen
    assert all(row["status"] == "FINISHED" for row in rows)
    assert [undill(row["result"]) for row in rows] == [100, 101, 102, 103, 104]

    r = client.post(
        f"/pebbles/{did}/results_map",
        json={"executions": [{"id": chosen[0]}], "download": False},
    )
    assert r.json() == [{"id": chosen[0], "status": "FINISHED", "result": f"lookup:{chosen[0]}"}]

    # Each is also an ordinary execution.
    assert undill(results(client, did, chosen[3])["results"]) == 103

    # A reused id is a conflict, and nothing of that batch is created.
    before = count_executions(runtime)
    fresh = str(uuid.uuid4())
    r = client.post(
        f"/pebbles/{did}/map",
        json={
            "executions": [
                {
                    "id": fresh,
                    "endpoint": "compute",
                    "arguments": {"firstNumber": 1, "secondNumber": 1},
                },
                {
                    "id": chosen[1],
                    "endpoint": "compute",
                    "arguments": {"firstNumber": 1, "secondNumber": 1},
                },
            ]
        },
    )
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "conflict"
    assert chosen[1] in r.json()["error"]["message"]
    # The same id twice in one batch is a conflict as well.
    r = client.post(
        f"/pebbles/{did}/map",
        json={
            "executions": [
                {
                    "id": fresh,
                    "endpoint": "compute",
                    "arguments": {"firstNumber": 1, "secondNumber": 1},
                },
                {
                    "id": fresh,
                    "endpoint": "compute",
                    "arguments": {"firstNumber": 2, "secondNumber": 2},
                },
            ]
        },
    )
    assert r.status_code == 409, r.text
    assert count_executions(runtime) == before
    assert client.get(f"/pebbles/{did}/executions/{fresh}/status").status_code == 404


def test_map_without_ids_and_with_lookup_and_failures(
    client: httpx.Client, ids: dict[str, str]
) -> None:
    did = ids["hello"]
    key = client.post("/pebbles/pickle", json={"data": b64dill("from a pickle")}).text
    r = client.post(
        f"/pebbles/{did}/map",
        json={
            "executions": [
                {"endpoint": "hello", "arguments": {"name": "map"}},
                {"endpoint": "hello", "arguments": {"name": f"lookup:{key}"}},
                {"endpoint": "hello", "arguments": {}},
            ]
        },
    )
    assert r.status_code == 201, r.text
    got = [e["id"] for e in r.json()["executions"]]
    assert len(got) == 3 and len(set(got)) == 3
    rows = client.post(
        f"/pebbles/{did}/results_map", json={"executions": [{"id": e} for e in got]}
    ).json()
    assert [undill(row["result"]) for row in rows] == [
        "Hello map!",
        "Hello from a pickle!",
        "Hello World!",
    ]

    fdid = ids["fails"]
    eid = str(uuid.uuid4())
    r = client.post(
        f"/pebbles/{fdid}/map",
        json={"executions": [{"id": eid, "endpoint": "fail", "arguments": {"message": "m1"}}]},
    )
    assert r.status_code == 201
    rows = client.post(f"/pebbles/{fdid}/results_map", json={"executions": [{"id": eid}]}).json()
    assert rows[0]["status"] == "FAILED"
    failure = undill(rows[0]["result"])
    assert failure["label"] == "ERROR" and "ValueError: m1" in failure["data"]


def test_results_map_of_running_execution_is_null_after_waiting(
    client: httpx.Client, ids: dict[str, str], runtime: LocalRuntime
) -> None:
    # results_map waits (up to 30 s) for the executions: a 1 s run is complete.
    did = ids["live"]
    eid = str(uuid.uuid4())
    r = client.post(
        f"/pebbles/{did}/map",
        json={
            "executions": [
                {
                    "id": eid,
                    "endpoint": "live_log_test",
                    "arguments": {"firstNumber": 1, "secondNumber": 1, "delay": 0.5},
                }
            ]
        },
    )
    assert r.status_code == 201
    started = time.monotonic()
    rows = client.post(f"/pebbles/{did}/results_map", json={"executions": [{"id": eid}]}).json()
    assert time.monotonic() - started < 20
    assert rows[0]["status"] == "FINISHED"
    assert undill(rows[0]["result"]) == 2


# -- catalogue and workers -------------------------------------------------------------------


def test_catalogue_paging(client: httpx.Client) -> None:
    r = client.get(
        "/daisies/collections/all/daisies",
        params={"verified": "true", "pageSize": 100, "page": 1},
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    everything = data["data"]
    assert data["total"] == len(everything) == 7
    names = [d["name"] for d in everything]
    assert set(names) == {
        "Add Two Numbers",
        "Always Fails",
        "Daisi Serialize",
        "Live Logging",
        "Print Hello",
        "Titanic Statistics",
        "Zero Shot Text Classification",
    }
    for d in everything:
        assert {"id", "name", "description"} <= set(d)
        uuid.UUID(d["id"])
    by_name = {d["name"]: d for d in everything}
    assert by_name["Print Hello"]["description"] == "Says hello."

    pages = []
    for page in (1, 2, 3, 4):
        r = client.get("/daisies/collections/all/daisies", params={"pageSize": 2, "page": page})
        assert r.status_code == 200
        body = r.json()["data"]
        assert body["total"] == 7
        pages.append(body["data"])
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    assert [d["id"] for p in pages for d in p] == [d["id"] for d in everything]
    r = client.get("/daisies/collections/all/daisies", params={"pageSize": 2, "page": 9})
    assert r.json()["data"]["data"] == []


def test_workers_number_status_set(client: httpx.Client, ids: dict[str, str]) -> None:
    did = ids["hello"]
    base = "/daisies/workers"
    r = client.get(f"{base}/{did}/number")
    assert r.status_code == 200
    assert 1 <= r.json() <= 3  # --workers 1 kept warm; the queue may have started more
    r = client.get(f"{base}/{did}/status")
    assert r.status_code == 200
    assert r.json()["message"] == "ready_to_update"

    r = client.post(f"{base}/{did}", json={"worker_number": 4})
    assert r.status_code == 422, r.text
    assert "1 to 3" in r.json()["error"]["message"]
    r = client.post(f"{base}/{did}", json={"worker_number": 3})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["message"], str) and "3" in r.json()["message"]
    deadline = time.monotonic() + 30
    while client.get(f"{base}/{did}/number").json() != 3:
        assert time.monotonic() < deadline, "the pool did not grow to 3"
        time.sleep(0.05)
    # The v1 view and the Daisi object agree.
    assert client.get(f"/v1/daisies/{did}/workers").json()["number"] == 3
    # Work still runs on the bigger pool.
    eid = submit(client, did, "hello", name="pool")
    assert value_of(client, did, eid) == "Hello pool!"

    r = client.post(f"{base}/{did}", json={"worker_number": 1})
    assert r.status_code == 200
    deadline = time.monotonic() + 30
    while client.get(f"{base}/{did}/number").json() != 1:
        assert time.monotonic() < deadline, "the pool did not shrink to 1"
        time.sleep(0.05)
    deadline = time.monotonic() + 30
    while client.get(f"{base}/{did}/status").json()["message"] != "ready_to_update":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    eid = submit(client, did, "hello", name="small pool")
    assert value_of(client, did, eid) == "Hello small pool!"


def test_legacy_only_server_serves_legacy_routes_not_v1() -> None:
    with LocalRuntime(EXAMPLES, legacy_only=True) as rt, httpx.Client(base_url=rt.api) as c:
        assert c.get("/capabilities").status_code == 404
        assert c.get("/v1/daisies").status_code == 404
        did = c.get("/daisies/connect", params={"name": "Add Two Numbers"}).json()["id"]
        eid = submit(c, did, "compute", firstNumber=20, secondNumber=22)
        assert value_of(c, did, eid) == 42


def test_compute_answers_the_result_in_the_reply(
    client: httpx.Client, ids: dict[str, str], runtime: LocalRuntime
) -> None:
    # The platform's synchronous route, as the curl snippets of real READMEs call it.
    r = client.post(
        f"/pebbles/{ids['add']}/compute/compute", json={"firstNumber": 5, "secondNumber": 6}
    )
    assert r.status_code == 200, r.text
    assert r.json() == 11
    failed = client.post(f"/pebbles/{ids['fails']}/compute/divide", json={})
    assert failed.status_code == 200, failed.text
    body = failed.json()
    assert body["status"] == "FAILED" and "ZeroDivisionError" in body["error"]["traceback"]
    later = client.post(
        f"/pebbles/{ids['live']}/compute/live_log_test",
        params={"wait_for_completion": "false"},
        json={"firstNumber": 1, "secondNumber": 2, "delay": 1},
    )
    assert later.status_code == 202 and later.json()["status"] == "RUNNING"
    assert wait_status(client, ids["live"], later.json()["id"]) == "FINISHED"
    before = count_executions(runtime)
    bad = client.post(f"/pebbles/{ids['add']}/compute/compute", json={"firstNumber": 5})
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "secondNumber"
    assert count_executions(runtime) == before
