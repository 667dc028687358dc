"""The per-execution event stream (Server-Sent Events) over raw HTTP.

``GET /pebble-api/v1/executions/{eid}/events``: status changes and log lines with
sequence numbers 1, 2, 3, ...; live while the execution runs; resumable with
``Last-Event-ID`` (or ``?after=``) with no gap and no duplicate; closed after the
terminal status.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from tests.server.conftest import EXAMPLES

from daisi_async.testing import LocalRuntime

TERMINAL = {"FINISHED", "FAILED", "CANCELLED"}


@dataclass(frozen=True)
class Event:
    id: int
    event: str
    data: dict[str, Any]

    @property
    def status(self) -> str | None:
        return str(self.data["status"]) if self.event == "status" else None


def sse(response: httpx.Response) -> Iterator[Event]:
    """A tiny Server-Sent Events parser: one Event per blank-line-terminated block."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if fields:
                yield Event(
                    int(fields["id"]), fields.get("event", "message"), json.loads(fields["data"])
                )
            fields = {}
        elif line.startswith(":"):
            continue  # a comment (keep-alive)
        else:
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
    assert not fields, f"a truncated event at the end of the stream: {fields}"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    root = tmp_path_factory.mktemp("event-daisies")
    shutil.copytree(EXAMPLES / "live-logging", root / "live-logging")
    with LocalRuntime(root) as rt:
        yield rt


@pytest.fixture(scope="module")
def live(client: httpx.Client) -> str:
    return str(client.get("/v1/daisies/Live Logging").json()["id"])


def submit(client: httpx.Client, did: str, **args: Any) -> str:
    body = {
        "endpoint": "live_log_test",
        "arguments": {k: {"value": v} for k, v in args.items()},
    }
    r = client.post(f"/v1/daisies/{did}/executions", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def replay(client: httpx.Client, eid: str, **headers: str) -> list[Event]:
    """Read a whole stream (it must close by itself)."""
    with client.stream("GET", f"/v1/executions/{eid}/events", headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        return list(sse(r))


def check_sequence(events: list[Event], *, first: int = 1) -> None:
    assert [e.id for e in events] == list(range(first, first + len(events)))
    for e in events:
        assert e.data["seq"] == e.id
        assert isinstance(e.data["time"], float)


def test_live_stream_of_a_running_execution(client: httpx.Client, live: str) -> None:
    t0 = time.monotonic()
    eid = submit(client, live, firstNumber=5, secondNumber=6, delay=3)
    events: list[Event] = []
    arrivals: list[float] = []
    first_log_status = None
    with client.stream("GET", f"/v1/executions/{eid}/events") as r:
        assert r.status_code == 200
        for ev in sse(r):
            events.append(ev)
            arrivals.append(time.monotonic() - t0)
            if ev.event == "log" and first_log_status is None:
                first_log_status = client.get(f"/v1/executions/{eid}").json()["status"]
        closed_at = time.monotonic() - t0
    check_sequence(events)
    statuses = [e.status for e in events if e.event == "status"]
    assert statuses == ["QUEUED", "RUNNING", "FINISHED"]
    assert events[0].status == "QUEUED" and events[-1].status == "FINISHED"
    logs = [e for e in events if e.event == "log"]
    assert [e.data["line"] for e in logs[1:]] == [
        *(f"Step {i}/6: {i * 0.5:.1f} s elapsed" for i in range(1, 7)),
        "Done: 5 + 6 = 11",
    ]
    assert "adding 5 and 6 over 3 seconds" in logs[0].data["line"]
    assert logs[0].data["stream"] == "stderr" and logs[1].data["stream"] == "stdout"
    # The first line arrives live, while the run is still RUNNING, long before its end.
    first_log = next(i for i, e in enumerate(events) if e.event == "log")
    assert first_log_status == "RUNNING"
    assert arrivals[first_log] < 1.5
    assert arrivals[-1] - arrivals[first_log] > 2.5
    # Log lines come as they are printed, not all at the end.
    step3 = next(i for i, e in enumerate(events) if e.data.get("line", "").startswith("Step 3/"))
    assert arrivals[-1] - arrivals[step3] > 1.0
    # The stream closes right after the terminal status.
    assert closed_at - arrivals[-1] < 1.0
    # A full replay after the end is the same stream, and closes at once.
    t1 = time.monotonic()
    assert replay(client, eid) == events
    assert time.monotonic() - t1 < 1.0


def test_resume_with_last_event_id_has_no_gap_and_no_duplicate(
    client: httpx.Client, live: str
) -> None:
    eid = submit(client, live, firstNumber=1, secondNumber=2, delay=2)
    seen: list[Event] = []
    # 1st connection: read 3 events and drop the connection.
    with client.stream("GET", f"/v1/executions/{eid}/events") as r:
        for ev in sse(r):
            seen.append(ev)
            if len(seen) == 3:
                break
    # 2nd connection: resume with Last-Event-ID, read 2 more, drop it again.
    with client.stream(
        "GET", f"/v1/executions/{eid}/events", headers={"Last-Event-ID": str(seen[-1].id)}
    ) as r:
        for n, ev in enumerate(sse(r), 1):
            seen.append(ev)
            if n == 2:
                break
    assert client.get(f"/v1/executions/{eid}").json()["status"] == "RUNNING"
    # 3rd connection: resume with ?after= and read to the end.
    with client.stream("GET", f"/v1/executions/{eid}/events", params={"after": seen[-1].id}) as r:
        seen.extend(sse(r))
    check_sequence(seen)
    assert seen[-1].status == "FINISHED"
    assert seen == replay(client, eid)


def test_after_and_last_event_id_on_a_finished_execution(client: httpx.Client, live: str) -> None:
    eid = submit(client, live, firstNumber=1, secondNumber=1, delay=0)
    assert client.get(f"/v1/executions/{eid}", params={"wait": 10}).json()["status"] == "FINISHED"
    full = replay(client, eid)
    check_sequence(full)
    assert [e.status for e in full if e.event == "status"] == ["QUEUED", "RUNNING", "FINISHED"]
    assert any(e.data.get("line") == "Done: 1 + 1 = 2" for e in full)
    n = len(full)
    for after in (0, 1, 2, n - 1):
        t0 = time.monotonic()
        tail = replay(client, eid, **{"Last-Event-ID": str(after)})
        assert tail == full[after:]
        assert time.monotonic() - t0 < 1.0
        with client.stream("GET", f"/v1/executions/{eid}/events", params={"after": after}) as r:
            assert list(sse(r)) == full[after:]
    # Resuming after the last event: nothing more, and the stream closes at once.
    t0 = time.monotonic()
    assert replay(client, eid, **{"Last-Event-ID": str(n)}) == []
    assert time.monotonic() - t0 < 1.0


def test_stream_of_a_failed_execution_ends_with_failed(client: httpx.Client, live: str) -> None:
    eid = submit(client, live, firstNumber="a", secondNumber=1, delay=0)
    events = replay(client, eid)  # connects while it is queued or running
    check_sequence(events)
    assert events[-1].status == "FAILED"
    assert [e.status for e in events if e.event == "status"] == ["QUEUED", "RUNNING", "FAILED"]
