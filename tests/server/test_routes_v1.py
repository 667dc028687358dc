"""The v1 extensions over raw HTTP: blobs, waits, batches, events, cancel, idempotency."""

from __future__ import annotations

import base64
import json
import os
import platform
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dill
import httpx
import pytest
from tests.server.conftest import EXAMPLES
from tests.support.v1_calls import wait as wait_for

from daisi_async.server.routes_v1 import BATCH_SLICE
from daisi_async.testing import LocalRuntime


@pytest.fixture(scope="module")
def ids(client: httpx.Client) -> dict[str, str]:
    daisies = client.get("/v1/daisies").json()["daisies"]
    by_name = {d["name"]: d["id"] for d in daisies}
    return {
        "add": by_name["Add Two Numbers"],
        "fails": by_name["Always Fails"],
        "serialize": by_name["Daisi Serialize"],
        "live": by_name["Live Logging"],
        "hello": by_name["Print Hello"],
        "titanic": by_name["Titanic Statistics"],
    }


def values(**kwargs: Any) -> dict[str, dict[str, Any]]:
    return {k: {"value": v} for k, v in kwargs.items()}


def submit(
    client: httpx.Client,
    did: str,
    endpoint: str,
    arguments: dict[str, Any],
    *,
    wait: float | None = None,
    headers: dict[str, str] | None = None,
    expect: int = 201,
) -> dict[str, Any]:
    params = {"wait": wait} if wait is not None else None
    r = client.post(
        f"/v1/daisies/{did}/executions",
        params=params,
        json={"endpoint": endpoint, "arguments": arguments},
        headers=headers,
    )
    assert r.status_code == expect, r.text
    body: dict[str, Any] = r.json()
    return body


def upload(client: httpx.Client, data: bytes) -> str:
    r = client.post("/v1/blobs", content=data, headers={"content-type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    assert r.json()["size"] == len(data)
    return str(r.json()["key"])


def count_executions(runtime: LocalRuntime, endpoint: str | None = None) -> int:
    db = sqlite3.connect(f"file:{runtime.store / 'daisi.sqlite3'}?mode=ro", uri=True)
    try:
        if endpoint is None:
            row = db.execute("SELECT COUNT(*) FROM executions").fetchone()
        else:
            row = db.execute(
                "SELECT COUNT(*) FROM executions WHERE endpoint = ?", (endpoint,)
            ).fetchone()
        return int(row[0])
    finally:
        db.close()


def ndjson(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


# -- capabilities and Daisies -------------------------------------------------------------


def test_capabilities(client: httpx.Client) -> None:
    r = client.get("/capabilities")
    assert r.status_code == 200
    assert r.json() == {
        "protocol": "daisi",
        "versions": [1],
        "features": ["blobs", "wait", "multiwait", "events", "batch", "cancel", "idempotency"],
        "max_body_bytes": 1 << 30,
        "max_workers": os.cpu_count() or 1,
        "inline_result_bytes": 65536,
        "runtime": {"python": platform.python_version(), "dill": dill.__version__},
    }


def test_list_daisies(client: httpx.Client) -> None:
    r = client.get("/v1/daisies")
    assert r.status_code == 200
    daisies = r.json()["daisies"]
    assert len(daisies) == 7
    for d in daisies:
        assert {
            "id",
            "name",
            "owner",
            "description",
            "endpoints",
            "public",
            "broken",
            "workers",
        } <= set(d)
        assert d["public"] is True
        assert d["broken"] is None
        assert d["workers"] == 1
    names = sorted(d["name"] for d in daisies)
    assert names[0] == "Add Two Numbers" and "Zero Shot Text Classification" in names


@pytest.mark.parametrize(
    "path",
    [
        "Daisi Serialize",
        quote("Daisi Serialize", safe=""),
        "daisi serialize",
        quote("exampledaisies/Daisi Serialize", safe=""),
        "exampledaisies/daisi%20serialize",
        "EXAMPLEDAISIES/DAISI SERIALIZE",
        "daisi-serialize",
    ],
)
def test_get_daisi_by_name_and_owner_name(
    client: httpx.Client, ids: dict[str, str], path: str
) -> None:
    r = client.get(f"/v1/daisies/{path}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == ids["serialize"]
    assert body["name"] == "Daisi Serialize"
    assert body["owner"] == "exampledaisies"
    assert body["public"] is True and body["broken"] is None and body["workers"] == 1
    assert [e["name"] for e in body["endpoints"]] == ["compute", "make_stack"]


def test_get_daisi_by_id_equals_legacy_object(client: httpx.Client, ids: dict[str, str]) -> None:
    for _ in range(50):  # the Daisi's state may change between the reads (a worker starts)
        r = client.get(f"/v1/daisies/{ids['add']}")
        assert r.status_code == 200
        legacy = client.get(f"/pebbles/{ids['add']}").json()
        if client.get(f"/v1/daisies/{ids['add']}").json() == r.json():  # it held still
            break
        time.sleep(0.1)
    assert r.json() == legacy
    assert r.json()["name"] == "Add Two Numbers"
    r = client.get(f"/v1/daisies/{uuid.uuid4()}")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


# -- blobs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 1000, 300 * 1024, 3 * 1024 * 1024 + 7])
def test_blob_roundtrip_byte_exact(client: httpx.Client, runtime: LocalRuntime, size: int) -> None:
    data = os.urandom(size)
    key = upload(client, data)
    r = client.get(f"/v1/blobs/{key}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.content == data
    assert int(r.headers["content-length"]) == size
    if size > 1024 * 1024:
        # Large blobs are files in the store, not rows.
        assert (runtime.store / "blobs" / key).stat().st_size == size


def test_blob_streamed_upload_without_length(client: httpx.Client) -> None:
    chunks = [os.urandom(200_000) for _ in range(8)]

    def gen() -> Iterator[bytes]:
        yield from chunks

    r = client.post("/v1/blobs", content=gen())
    assert r.status_code == 201, r.text
    assert r.json()["size"] == sum(map(len, chunks))
    with client.stream("GET", f"/v1/blobs/{r.json()['key']}") as resp:
        got = b"".join(resp.iter_bytes())
    assert got == b"".join(chunks)


def test_unknown_blob_is_404(client: httpx.Client) -> None:
    r = client.get(f"/v1/blobs/{uuid.uuid4().hex}")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


# -- submit one -------------------------------------------------------------------------------


def test_submit_without_wait_then_get(client: httpx.Client, ids: dict[str, str]) -> None:
    body = submit(client, ids["add"], "compute", values(firstNumber=5, secondNumber=6))
    assert body["status"] in ("QUEUED", "RUNNING", "FINISHED")
    assert body["daisi_id"] == ids["add"] and body["endpoint"] == "compute"
    assert body["result"] is None and body["error"] is None
    assert isinstance(body["created_at"], float)
    done = wait_for(client, body["id"])
    assert done["status"] == "FINISHED"
    assert done["result"] == {"encoding": "json", "value": 11, "size": done["result"]["size"]}
    assert done["started_at"] >= done["created_at"]
    assert done["finished_at"] >= done["started_at"]
    # Without wait or result=1 the result is not inlined; with result=1 it is.
    r = client.get(f"/v1/executions/{body['id']}")
    assert r.json()["status"] == "FINISHED" and r.json()["result"] is None
    r = client.get(f"/v1/executions/{body['id']}", params={"result": 1})
    assert r.json()["result"]["value"] == 11


def test_submit_with_wait_inlines_json_result(client: httpx.Client, ids: dict[str, str]) -> None:
    body = submit(client, ids["add"], "compute", values(firstNumber=5, secondNumber=6), wait=30)
    assert body["status"] == "FINISHED"
    assert body["result"]["encoding"] == "json"
    assert body["result"]["value"] == 11

    body = submit(client, ids["titanic"], "summary", {}, wait=30)
    assert body["status"] == "FINISHED"
    summary = body["result"]["value"]
    assert body["result"]["encoding"] == "json"
    assert {"mean", "median", "count"} == set(summary["Age"])


def test_submit_with_wait_dill_result_for_tuple(client: httpx.Client, ids: dict[str, str]) -> None:
    a = upload(client, dill.dumps((1, 2)))
    b = upload(client, dill.dumps((3,)))
    body = submit(
        client,
        ids["add"],
        "compute",
        {"firstNumber": {"blob": a}, "secondNumber": {"blob": b}},
        wait=30,
    )
    assert body["status"] == "FINISHED", body
    result = body["result"]
    assert result["encoding"] == "dill"
    assert dill.loads(base64.b64decode(result["data"])) == (1, 2, 3)
    # /result: the raw dill bytes.
    r = client.get(f"/v1/executions/{body['id']}/result")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-dill"
    assert dill.loads(r.content) == (1, 2, 3)
    assert len(r.content) == result["size"]


def test_large_result_is_not_inlined(client: httpx.Client, ids: dict[str, str]) -> None:
    body = submit(client, ids["serialize"], "make_stack", values(nx=100, ny=100, layers=2), wait=30)
    assert body["status"] == "FINISHED", body
    result = body["result"]
    assert result["encoding"] == "dill"
    assert result["data"] is None
    assert result["size"] > 65536
    r = client.get(f"/v1/executions/{body['id']}/result")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-dill"
    assert len(r.content) == result["size"]
    stack = dill.loads(r.content)
    assert type(stack).__name__ == "MapStack" and stack.nb_layers == 2
    assert stack.maps[1].shape == (100, 100)


def test_result_route_json(client: httpx.Client, ids: dict[str, str]) -> None:
    body = submit(client, ids["hello"], "hello", values(name="json"), wait=30)
    r = client.get(f"/v1/executions/{body['id']}/result")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == "Hello json!"
    assert body["result"] == {"encoding": "json", "value": "Hello json!", "size": len(r.content)}
    body = submit(client, ids["add"], "compute", values(firstNumber=5, secondNumber=6), wait=30)
    assert body["result"] == {"encoding": "json", "value": 11, "size": 2}
    assert client.get(f"/v1/executions/{body['id']}/result").content == b"11"


def test_argument_kinds_value_blob_execution(client: httpx.Client, ids: dict[str, str]) -> None:
    key = upload(client, dill.dumps("blobby"))
    body = submit(client, ids["hello"], "hello", {"name": {"blob": key}}, wait=30)
    assert body["result"]["value"] == "Hello blobby!"

    up = submit(client, ids["add"], "compute", values(firstNumber=40, secondNumber=2))
    body = submit(client, ids["hello"], "hello", {"name": {"execution": up["id"]}}, wait=30)
    assert body["result"]["value"] == "Hello 42!"

    body = submit(client, ids["hello"], "hello", values(name={"nested": [1, None, True]}), wait=30)
    assert body["result"]["value"] == "Hello {'nested': [1, None, True]}!"


def test_literal_lookup_string_arrives_unchanged(client: httpx.Client, ids: dict[str, str]) -> None:
    body = submit(client, ids["hello"], "hello", values(name="lookup:abc"), wait=30)
    assert body["status"] == "FINISHED", body
    assert body["result"]["value"] == "Hello lookup:abc!"


def test_execution_argument_upstream_failed(client: httpx.Client, ids: dict[str, str]) -> None:
    up = submit(client, ids["fails"], "fail", values(message="upstream boom"))
    body = submit(client, ids["hello"], "hello", {"name": {"execution": up["id"]}}, wait=30)
    assert body["status"] == "FAILED"
    assert body["error"]["type"] == "daisi.UpstreamFailed"
    assert up["id"] in body["error"]["message"]
    assert "'name'" in body["error"]["message"]
    assert "ValueError: upstream boom" in body["error"]["traceback"]
    up_done = wait_for(client, up["id"])
    assert up_done["error"]["type"] == "builtins.ValueError"
    assert up_done["error"]["message"] == "upstream boom"


def test_get_execution_wait_times_out_and_result_409_before_end(
    client: httpx.Client, ids: dict[str, str]
) -> None:
    body = submit(
        client, ids["live"], "live_log_test", values(firstNumber=1, secondNumber=2, delay=1.5)
    )
    eid = body["id"]
    started = time.monotonic()
    r = client.get(f"/v1/executions/{eid}", params={"wait": 0.3})
    assert 0.25 <= time.monotonic() - started < 1.4
    assert r.json()["status"] in ("QUEUED", "RUNNING")
    assert r.json()["result"] is None
    r = client.get(f"/v1/executions/{eid}/result")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "not_ready"
    done = wait_for(client, eid)
    assert done["result"]["value"] == 3
    r = client.get(f"/v1/executions/{eid}/result")
    assert r.status_code == 200 and r.json() == 3


def test_result_of_failed_execution_is_409(client: httpx.Client, ids: dict[str, str]) -> None:
    body = submit(client, ids["fails"], "divide", {}, wait=30)
    assert body["status"] == "FAILED"
    assert body["result"] is None
    assert body["error"]["type"] == "builtins.ZeroDivisionError"
    assert body["error"]["message"] == "division by zero"
    assert "Traceback (most recent call last)" in body["error"]["traceback"]
    r = client.get(f"/v1/executions/{body['id']}/result")
    assert r.status_code == 409
    assert "FAILED" in r.json()["error"]["message"]


def test_logs_after_and_limit(client: httpx.Client, ids: dict[str, str]) -> None:
    body = submit(
        client,
        ids["live"],
        "live_log_test",
        values(firstNumber=1, secondNumber=1, delay=1),
        wait=30,
    )
    eid = body["id"]
    r = client.get(f"/v1/executions/{eid}/logs")
    assert r.status_code == 200
    page = r.json()
    assert page["status"] == "FINISHED"
    lines = page["lines"]
    texts = [x["line"] for x in lines]
    assert texts[-3:] == ["Step 1/2: 0.5 s elapsed", "Step 2/2: 1.0 s elapsed", "Done: 1 + 1 = 2"]
    assert any("adding 1 and 1 over 1 seconds" in t for t in texts)
    seqs = [x["seq"] for x in lines]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(x["stream"] in ("stdout", "stderr", "log") or x["stream"] for x in lines)
    assert {x["stream"] for x in lines if x["line"].startswith("Step")} == {"stdout"}
    assert all(isinstance(x["time"], float) for x in lines)

    r = client.get(f"/v1/executions/{eid}/logs", params={"after": seqs[0]})
    assert [x["seq"] for x in r.json()["lines"]] == seqs[1:]
    r = client.get(f"/v1/executions/{eid}/logs", params={"after": seqs[0], "limit": 2})
    assert [x["seq"] for x in r.json()["lines"]] == seqs[1:3]
    r = client.get(f"/v1/executions/{eid}/logs", params={"after": seqs[-1]})
    assert r.json()["lines"] == []
    r = client.get(f"/v1/executions/{eid}/logs", params={"limit": 0})
    assert r.json()["lines"] == []


def test_events_stream_and_resume(client: httpx.Client, ids: dict[str, str]) -> None:
    body = submit(
        client, ids["live"], "live_log_test", values(firstNumber=1, secondNumber=1, delay=1)
    )
    eid = body["id"]

    def read(headers: dict[str, str] | None = None) -> list[tuple[int, str, dict[str, Any]]]:
        events = []
        with client.stream("GET", f"/v1/executions/{eid}/events", headers=headers) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            fields: dict[str, str] = {}
            for line in r.iter_lines():
                if line.startswith(":"):
                    continue
                if not line:
                    if fields:
                        events.append(
                            (int(fields["id"]), fields["event"], json.loads(fields["data"]))
                        )
                    fields = {}
                    continue
                name, _, value = line.partition(": ")
                fields[name] = value
        return events

    events = read()
    seqs = [e[0] for e in events]
    assert seqs == list(range(1, len(events) + 1))
    statuses = [e[2]["status"] for e in events if e[1] == "status"]
    assert statuses == ["QUEUED", "RUNNING", "FINISHED"]
    assert events[-1][1] == "status" and events[-1][2]["status"] == "FINISHED"
    logs = [e[2]["line"] for e in events if e[1] == "log"]
    assert logs[-1] == "Done: 1 + 1 = 2"
    assert all(e[2]["seq"] == e[0] for e in events)

    resumed = read({"Last-Event-ID": str(seqs[2])})
    assert resumed == events[3:]
    r = client.get(f"/v1/executions/{eid}/events", params={"after": seqs[-2]})
    assert "event: status" in r.text and '"FINISHED"' in r.text
    assert r.text.count("id: ") == 1


# -- batch ------------------------------------------------------------------------------------


def test_batch_without_wait(
    client: httpx.Client, ids: dict[str, str], runtime: LocalRuntime
) -> None:
    before = count_executions(runtime)
    items = [
        {
            "daisi_id": ids["add"],
            "endpoint": "compute",
            "arguments": values(firstNumber=1, secondNumber=2),
        },
        {"daisi_id": ids["add"], "endpoint": "nope", "arguments": {}},
        {"daisi_id": ids["hello"], "endpoint": "hello", "arguments": values(name="batch")},
        {"daisi_id": ids["add"], "endpoint": "compute", "arguments": values(firstNumber=1)},
        {"daisi_id": str(uuid.uuid4()), "endpoint": "compute", "arguments": {}},
        "not an object",
    ]
    r = client.post("/v1/executions", json={"executions": items})
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert len(res) == len(items)
    assert res[0]["execution"]["daisi_id"] == ids["add"]
    assert res[1]["error"]["status"] == 404 and "nope" in res[1]["error"]["message"]
    assert res[2]["execution"]["endpoint"] == "hello"
    assert res[3]["error"]["status"] == 422 and res[3]["error"]["param"] == "secondNumber"
    assert res[4]["error"]["status"] == 404
    assert res[5]["error"]["status"] == 400
    assert count_executions(runtime) == before + 2
    assert wait_for(client, res[0]["execution"]["id"])["result"]["value"] == 3
    assert wait_for(client, res[2]["execution"]["id"])["result"]["value"] == "Hello batch!"


def test_batch_with_wait_streams_ndjson(client: httpx.Client, ids: dict[str, str]) -> None:
    items = [
        {
            "daisi_id": ids["add"],
            "endpoint": "compute",
            "arguments": values(firstNumber=i, secondNumber=i),
        }
        for i in range(5)
    ]
    items.append({"daisi_id": ids["fails"], "endpoint": "fail", "arguments": values(message="x")})
    items.append({"daisi_id": ids["add"], "endpoint": "compute", "arguments": {}})
    r = client.post("/v1/executions", params={"wait": 30}, json={"executions": items})
    assert r.status_code == 200, r.text
    lines = ndjson(r)
    assert lines[0]["type"] == "submitted"
    submitted = lines[0]["results"]
    assert len(submitted) == 7
    assert "error" in submitted[6] and submitted[6]["error"]["status"] == 422
    created = [s["execution"]["id"] for s in submitted[:6]]
    done = [x for x in lines[1:] if x["type"] == "done"]
    assert sorted(d["execution"]["id"] for d in done) == sorted(created)
    assert lines[-1] == {"type": "end", "pending": []}
    assert len(lines) == 1 + 6 + 1
    by_id = {d["execution"]["id"]: d["execution"] for d in done}
    assert [by_id[e]["result"]["value"] for e in created[:5]] == [0, 2, 4, 6, 8]
    assert by_id[created[5]]["status"] == "FAILED"
    assert by_id[created[5]]["error"]["message"] == "x"


def test_a_large_batch_starts_running_before_it_is_all_recorded(
    client: httpx.Client, ids: dict[str, str]
) -> None:
    warm = submit(client, ids["add"], "compute", values(firstNumber=0, secondNumber=0), wait=60)
    assert warm["status"] == "FINISHED"  # a worker is warm and idle now
    n = 3 * BATCH_SLICE
    args = [values(firstNumber=i, secondNumber=1) for i in range(n)]
    items = [{"daisi_id": ids["add"], "endpoint": "compute", "arguments": a} for a in args]
    r = client.post("/v1/executions", json={"executions": items})
    assert r.status_code == 200, r.text
    made = [x["execution"] for x in r.json()["results"]]
    done = [wait_for(client, x["id"]) for x in made]
    assert [d["result"]["value"] for d in done] == [i + 1 for i in range(n)]
    # Workers took the first slice's executions while later slices were being recorded.
    first_start = min(d["started_at"] for d in done[:BATCH_SLICE])
    assert first_start < made[-1]["created_at"]


def test_batch_with_wait_reports_pending_at_timeout(
    client: httpx.Client, ids: dict[str, str]
) -> None:
    items = [
        {
            "daisi_id": ids["live"],
            "endpoint": "live_log_test",
            "arguments": values(firstNumber=1, secondNumber=1, delay=2),
        },
    ]
    r = client.post("/v1/executions", params={"wait": 0.3}, json={"executions": items})
    lines = ndjson(r)
    eid = lines[0]["results"][0]["execution"]["id"]
    assert lines[-1] == {"type": "end", "pending": [eid]}
    client.post(f"/v1/executions/{eid}/cancel")


def test_multiplexed_wait_many_executions_one_request(
    client: httpx.Client, ids: dict[str, str]
) -> None:
    n = 200
    items = [
        {
            "daisi_id": ids["add"],
            "endpoint": "compute",
            "arguments": values(firstNumber=i, secondNumber=1000),
        }
        for i in range(n)
    ]
    r = client.post("/v1/executions", json={"executions": items})
    created = [x["execution"]["id"] for x in r.json()["results"]]
    assert len(created) == n
    unknown = str(uuid.uuid4())
    r = client.post(
        "/v1/executions/wait",
        json={"ids": [*created, unknown, "not/an id", created[0]], "timeout": 60},
    )
    assert r.status_code == 200, r.text
    lines = ndjson(r)
    errors = [x for x in lines if x["type"] == "error"]
    assert sorted(e["id"] for e in errors) == sorted([unknown, "not/an id"])
    assert all(e["error"]["status"] == 404 for e in errors)
    done = [x["execution"] for x in lines if x["type"] == "done"]
    assert len(done) == n
    assert {d["id"]: d["result"]["value"] for d in done} == {
        eid: i + 1000 for i, eid in enumerate(created)
    }
    assert lines[-1] == {"type": "end", "pending": []}

    # Waiting again: all already ended, they come at once.
    r = client.post("/v1/executions/wait", json={"ids": created[:10], "timeout": 0})
    assert len([x for x in ndjson(r) if x["type"] == "done"]) == 10


# -- idempotency, cancel, workers -----------------------------------------------------------


def test_idempotent_submission(
    client: httpx.Client, ids: dict[str, str], runtime: LocalRuntime
) -> None:
    key = f"idem-{uuid.uuid4()}"
    before = count_executions(runtime)
    headers = {"Idempotency-Key": key}
    args = values(firstNumber=1, secondNumber=2, delay=0.2)
    first = submit(client, ids["live"], "live_log_test", args, headers=headers, expect=201)
    second = submit(client, ids["live"], "live_log_test", args, headers=headers, expect=200)
    assert second["id"] == first["id"]
    third = submit(client, ids["live"], "live_log_test", args, headers=headers, wait=30, expect=200)
    assert third["id"] == first["id"]
    assert third["result"]["value"] == 3
    assert count_executions(runtime) == before + 1
    # The single run printed its lines once.
    lines = client.get(f"/v1/executions/{first['id']}/logs").json()["lines"]
    assert [x["line"] for x in lines].count("Done: 1 + 2 = 3") == 1

    # A different key makes a new execution.
    other = submit(
        client, ids["live"], "live_log_test", args, headers={"Idempotency-Key": key + "x"}
    )
    assert other["id"] != first["id"]

    # Batch items carry the key in the body.
    bkey = f"batch-{uuid.uuid4()}"
    item = {
        "daisi_id": ids["add"],
        "endpoint": "compute",
        "arguments": values(firstNumber=2, secondNumber=2),
        "idempotency_key": bkey,
    }
    a = client.post("/v1/executions", json={"executions": [item]}).json()["results"][0]
    b = client.post("/v1/executions", json={"executions": [item, item]}).json()["results"]
    assert a["created"] is True
    assert [x["execution"]["id"] for x in b] == [a["execution"]["id"]] * 2
    assert [x["created"] for x in b] == [False, False]
    # A new key twice in one batch, in two of its slices: made once.
    fresh = {**item, "idempotency_key": f"batch-{uuid.uuid4()}"}
    others = [{**item, "idempotency_key": f"other-{uuid.uuid4()}"} for _ in range(BATCH_SLICE)]
    c = client.post("/v1/executions", json={"executions": [fresh, *others, fresh]}).json()
    first_c, last_c = c["results"][0], c["results"][-1]
    assert (first_c["created"], last_c["created"]) == (True, False)
    assert first_c["execution"]["id"] == last_c["execution"]["id"]
    assert count_executions(runtime) == before + 3 + 1 + BATCH_SLICE


def test_cancel_long_running(client: httpx.Client, ids: dict[str, str]) -> None:
    did = ids["live"]
    body = submit(client, did, "live_log_test", values(firstNumber=1, secondNumber=2, delay=30))
    eid = body["id"]
    deadline = time.monotonic() + 20
    while not client.get(f"/v1/executions/{eid}/logs").json()["lines"]:
        assert time.monotonic() < deadline, "the run did not start"
        time.sleep(0.05)
    assert client.get(f"/v1/executions/{eid}").json()["status"] == "RUNNING"
    started = time.monotonic()
    r = client.post(f"/v1/executions/{eid}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "CANCELLED"
    assert r.json()["error"]["type"] == "daisi.Cancelled"
    done = wait_for(client, eid, timeout=5)
    assert done["status"] == "CANCELLED"
    assert time.monotonic() - started < 5
    # It stays cancelled; cancelling again changes nothing.
    time.sleep(1.2)
    r = client.post(f"/v1/executions/{eid}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED"
    assert client.get(f"/v1/executions/{eid}").json()["status"] == "CANCELLED"
    assert client.get(f"/pebbles/{did}/executions/{eid}/status").json() == "FAILED"
    n_lines = len(client.get(f"/v1/executions/{eid}/logs").json()["lines"])
    time.sleep(0.8)
    assert len(client.get(f"/v1/executions/{eid}/logs").json()["lines"]) == n_lines
    # The Daisi still works afterwards (its worker was replaced).
    body = submit(
        client, did, "live_log_test", values(firstNumber=2, secondNumber=2, delay=0), wait=30
    )
    assert body["status"] == "FINISHED" and body["result"]["value"] == 4

    # Cancelling a finished execution leaves it FINISHED.
    r = client.post(f"/v1/executions/{body['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "FINISHED"


def test_cancel_queued_execution(client: httpx.Client, ids: dict[str, str]) -> None:
    did = ids["live"]
    blocker = submit(client, did, "live_log_test", values(firstNumber=1, secondNumber=1, delay=1))
    queued = submit(client, did, "live_log_test", values(firstNumber=1, secondNumber=1, delay=1))
    r = client.post(f"/v1/executions/{queued['id']}/cancel")
    assert r.json()["status"] == "CANCELLED"
    assert wait_for(client, blocker["id"])["status"] == "FINISHED"
    time.sleep(0.2)
    q = client.get(f"/v1/executions/{queued['id']}").json()
    assert q["status"] == "CANCELLED"
    assert q["error"]["type"] == "daisi.Cancelled"
    # It never ran: no log line, no result.
    assert client.get(f"/v1/executions/{queued['id']}/logs").json()["lines"] == []
    assert client.get(f"/v1/executions/{queued['id']}/result").status_code == 409


def test_workers_get_put(client: httpx.Client, ids: dict[str, str]) -> None:
    did = ids["titanic"]
    r = client.get(f"/v1/daisies/{did}/workers")
    assert r.status_code == 200
    assert r.json() == {"number": 1, "status": "ready_to_update"}
    r = client.put(f"/v1/daisies/{did}/workers", json={"number": 2})
    assert r.status_code == 200, r.text
    assert r.json()["number"] == 2
    assert client.get(f"/v1/daisies/{did}/workers").json()["number"] == 2
    assert client.get(f"/daisies/workers/{did}/number").json() == 2
    assert client.get(f"/v1/daisies/{did}").json()["workers"] == 2
    body = submit(client, did, "mean", values(column="Fare"), wait=30)
    assert body["status"] == "FINISHED" and body["result"]["value"] > 0
    r = client.put(f"/v1/daisies/{did}/workers", json={"number": 1})
    assert r.json()["number"] == 1
    assert client.get(f"/v1/daisies/{did}/workers").json()["number"] == 1


def test_idempotency_mismatch_leaves_the_first_execution_alone(
    client: httpx.Client, ids: dict[str, str], runtime: LocalRuntime
) -> None:
    key = f"mismatch-{uuid.uuid4()}"
    headers = {"Idempotency-Key": key}
    before = count_executions(runtime)
    first = submit(
        client, ids["add"], "compute", values(firstNumber=1, secondNumber=2), headers=headers
    )
    r = client.post(
        f"/v1/daisies/{ids['add']}/executions",
        json={"endpoint": "compute", "arguments": values(firstNumber=5, secondNumber=5)},
        headers=headers,
    )
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "idempotency_mismatch"
    assert count_executions(runtime) == before + 1
    assert wait_for(client, first["id"])["status"] == "FINISHED"
    again = submit(
        client, ids["add"], "compute", values(firstNumber=1, secondNumber=2),
        headers=headers, wait=30, expect=200,
    )  # fmt: skip
    assert again["id"] == first["id"] and again["result"]["value"] == 3


def test_idempotency_keys_of_a_store_without_fingerprints_still_work(
    tmp_path: Path,
) -> None:
    examples = EXAMPLES
    store = tmp_path / "store"
    args = values(firstNumber=1, secondNumber=2)
    with LocalRuntime(examples, store=store) as rt, httpx.Client(base_url=rt.api) as c:
        did = c.get("/v1/daisies/Add Two Numbers").json()["id"]
        old = submit(c, did, "compute", args, headers={"Idempotency-Key": "old"})
    # As a store written before fingerprints were kept.
    db = sqlite3.connect(store / "daisi.sqlite3")
    db.execute("ALTER TABLE idempotency DROP COLUMN fingerprint")
    db.close()
    with LocalRuntime(examples, store=store) as rt, httpx.Client(base_url=rt.api) as c:
        # An old key has no fingerprint: it answers its execution, whatever comes.
        other = values(firstNumber=7, secondNumber=7)
        again = submit(c, did, "compute", other, headers={"Idempotency-Key": "old"}, expect=200)
        assert again["id"] == old["id"]
        # New keys are checked.
        submit(c, did, "compute", args, headers={"Idempotency-Key": "new"})
        r = c.post(
            f"/v1/daisies/{did}/executions",
            json={"endpoint": "compute", "arguments": other},
            headers={"Idempotency-Key": "new"},
        )
        assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_mismatch"
        assert "unexpected error" not in rt.logs()


def test_an_encoded_slash_stays_inside_its_segment(
    client: httpx.Client, ids: dict[str, str]
) -> None:
    # Routing used to decode %2F first: "x%2Fcancel" reached the cancel route (405).
    for path in ("/v1/executions/x%2Fcancel", "/v1/executions/x%2flogs", "/v1/blobs/a%2Fb"):
        r = client.get(path)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"]["code"] == "not_found"
    # Names with a slash ("owner/name") are still found when the slash is encoded.
    r = client.get("/v1/daisies/exampledaisies%2FDaisi%20Serialize")
    assert r.status_code == 200 and r.json()["id"] == ids["serialize"]
