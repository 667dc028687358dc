"""``GET /v1/executions`` (the caller's executions) and ``GET /v1/events`` (their live
status changes) against a real runtime with tokens: who sees what, filters, paging,
bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from daisi_async.testing import LocalRuntime
from support.web import ALICE, BOB, TOKENS, daisi_id, submit, write_daisies


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    root = write_daisies(tmp_path_factory.mktemp("list-daisies"))
    with LocalRuntime(root, tokens=TOKENS) as rt:
        yield rt


@pytest.fixture(scope="module")
def add(client: httpx.Client) -> str:
    return daisi_id(client, "Add Two Numbers")


def listed(client: httpx.Client, headers: dict[str, str] | None = None, **params: Any) -> list[str]:
    r = client.get("/v1/executions", params=params, headers=headers or {})
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()["executions"]]


def run(client: httpx.Client, did: str, headers: dict[str, str] | None = None, **kw: Any) -> str:
    body = submit(client, did, "compute", {"firstNumber": 1, "secondNumber": 2}, headers, **kw)
    return str(body["id"])


def test_each_caller_lists_what_they_may_see(client: httpx.Client, add: str) -> None:
    secret = daisi_id(client, "alice/Secret Garden", ALICE)
    mine = run(client, add, ALICE)
    private = str(submit(client, secret, "recipe", {"x": 2}, ALICE)["id"])
    bobs = run(client, add, BOB)
    anonymous = run(client, add)

    alice_sees = listed(client, ALICE)
    assert alice_sees[:2] == [private, mine]  # newest first
    assert bobs not in alice_sees and anonymous not in alice_sees
    assert listed(client, BOB)[0] == bobs and mine not in listed(client, BOB)
    anonymous_sees = listed(client)
    assert anonymous in anonymous_sees
    assert not {mine, private, bobs} & set(anonymous_sees)
    # Anonymous executions stay readable by id to anyone (the single-execution rule).
    assert client.get(f"/v1/executions/{anonymous}", headers=ALICE).status_code == 200


def test_filters_and_paging(client: httpx.Client, add: str) -> None:
    probe = daisi_id(client, "Web Probe")
    ids = [run(client, add, BOB) for _ in range(3)]
    failed = str(submit(client, probe, "fail", {}, BOB)["id"])
    assert listed(client, BOB, daisi="Add Two Numbers")[:3] == ids[::-1]
    assert failed not in listed(client, BOB, daisi=add)
    assert listed(client, BOB, daisi="local/Web Probe", status="FAILED")[0] == failed
    assert failed not in listed(client, BOB, status="FINISHED")
    assert failed in listed(client, BOB, status="finished,FAILED")

    page = client.get("/v1/executions", params={"limit": 2, "daisi": add}, headers=BOB).json()
    assert [e["id"] for e in page["executions"]] == ids[:0:-1]
    assert page["next"] == ids[1]
    assert page["executions"][0]["status"] == "FINISHED"
    assert page["executions"][0]["result"] is None
    rest = listed(client, BOB, limit=2, daisi=add, before=page["next"])
    assert rest[0] == ids[0]
    everything = listed(client, BOB, limit=500)
    last = client.get("/v1/executions", params={"before": everything[-1]}, headers=BOB).json()
    assert last == {"executions": [], "next": None}


@pytest.mark.parametrize(
    ("params", "headers", "status", "code", "param"),
    [
        ({"status": "BOGUS"}, {}, 400, "bad_request", "status"),
        ({"status": "NOT_STARTED"}, {}, 400, "bad_request", "status"),
        ({"limit": "0"}, {}, 400, "bad_request", "limit"),
        ({"limit": "-1"}, {}, 400, "bad_request", "limit"),
        ({"limit": "ten"}, {}, 400, "bad_request", "limit"),
        ({"before": "no-such-execution"}, {}, 400, "bad_request", "before"),
        ({"daisi": "No Such Daisi"}, {}, 404, "not_found", None),
        ({"daisi": "alice/Secret Garden"}, BOB, 404, "not_found", None),
        ({}, {"Authorization": "token nope"}, 401, "unauthorized", None),
    ],
)
def test_bad_list_requests(
    client: httpx.Client,
    add: str,
    params: dict[str, str],
    headers: dict[str, str],
    status: int,
    code: str,
    param: str | None,
) -> None:
    feed_too = not {"limit", "before"} & params.keys()  # the feed takes neither
    for route in ("/v1/executions", "/v1/events") if feed_too else ("/v1/executions",):
        r = client.get(route, params=params, headers=headers)
        assert r.status_code == status, (route, r.text)
        error = r.json()["error"]
        assert error["code"] == code and error.get("param") == param
    # nothing was created, and the next good call works
    assert client.get("/v1/executions", params={"limit": 1}).status_code == 200


def test_before_must_be_an_execution_the_caller_sees(client: httpx.Client, add: str) -> None:
    alices = run(client, add, ALICE)
    r = client.get("/v1/executions", params={"before": alices}, headers=BOB)
    assert r.status_code == 400 and r.json()["error"]["param"] == "before"
    assert client.get("/v1/executions", params={"before": alices}, headers=ALICE).status_code == 200


def test_a_limit_above_the_cap_counts_as_the_cap(client: httpx.Client, add: str) -> None:
    r = client.get("/v1/executions", params={"limit": "9" * 40})
    assert r.status_code == 200 and len(r.json()["executions"]) <= 500


# -- the live feed --------------------------------------------------------------------------


class Feed:
    """A ``/v1/events`` stream, read block by block."""

    def __init__(self, client: httpx.Client, headers: dict[str, str], **params: str) -> None:
        self._cm = client.stream("GET", "/v1/events", headers=headers, params=params)
        self.response = self._cm.__enter__()
        assert self.response.status_code == 200
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self._lines = self.response.iter_lines()
        assert self._block() == ["retry: 2000", ": connected"]  # subscribed from now on

    def _block(self) -> list[str]:
        block: list[str] = []
        for line in self._lines:
            if not line:
                if block:
                    return block
                continue
            block.append(line)
        raise AssertionError("the feed ended")

    def until(self, eid: str, status: str) -> list[dict[str, Any]]:
        """Every execution event up to ``eid`` reaching ``status`` (included)."""
        seen: list[dict[str, Any]] = []
        while True:
            block = self._block()
            data = [line[6:] for line in block if line.startswith("data: ")]
            if not data:
                continue
            assert "event: status" in block
            seen.append(json.loads(data[0]))
            if seen[-1]["id"] == eid and seen[-1]["status"] == status:
                return seen

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def test_feed_shows_each_caller_their_own_status_changes(runtime: LocalRuntime, add: str) -> None:
    with httpx.Client(base_url=runtime.api, timeout=30) as c:
        alice_feed = Feed(c, ALICE)
        anonymous_feed = Feed(c, {})
        filtered = Feed(c, ALICE, daisi="Add Two Numbers", status="FINISHED")
        try:
            bobs = run(c, add, BOB)
            anonymous = run(c, add)
            mine = run(c, add, ALICE)
            anonymous2 = run(c, add)

            seen = alice_feed.until(mine, "FINISHED")
            assert [e["status"] for e in seen] == ["QUEUED", "RUNNING", "FINISHED"]
            assert {e["id"] for e in seen} == {mine}
            assert seen[-1]["finished_at"] >= seen[-1]["started_at"] > 0
            assert [e["seq"] for e in seen] == sorted(e["seq"] for e in seen)

            seen = anonymous_feed.until(anonymous2, "FINISHED")
            assert {e["id"] for e in seen} == {anonymous, anonymous2}
            assert bobs not in {e["id"] for e in seen}

            seen = filtered.until(mine, "FINISHED")
            assert [(e["id"], e["status"]) for e in seen] == [(mine, "FINISHED")]
        finally:
            for feed in (alice_feed, anonymous_feed, filtered):
                feed.close()
    assert client_ok(runtime)


def client_ok(runtime: LocalRuntime) -> bool:
    """The server still answers (closed feeds left nothing behind that hurts it)."""
    return httpx.get(runtime.api + "/v1/executions", timeout=30).status_code == 200
