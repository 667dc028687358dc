"""Operations routes against a real runtime: ``/healthz``, ``/metrics``, and the OpenAPI
document, which must list exactly the v1 routes."""

from __future__ import annotations

import re
import resource
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from daisi_async.server import routes_v1
from daisi_async.server.ops import openapi_document
from daisi_async.testing import LocalRuntime
from support.web import ALICE, TOKENS, daisi_id, submit, wait_until, write_daisies

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    root = write_daisies(tmp_path_factory.mktemp("ops-daisies"))
    with LocalRuntime(root, tokens=TOKENS) as rt:
        yield rt


@pytest.fixture(scope="module")
def web(runtime: LocalRuntime) -> Iterator[httpx.Client]:
    """httpx at the root of the server (``client`` is at ``/pebble-api``)."""
    with httpx.Client(base_url=runtime.url, timeout=60) as c:
        yield c


def scrape(web: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``(sample name, labels) -> value`` of every sample of ``/metrics``."""
    r = web.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[s.name, frozenset(s.labels.items())] = s.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# -- /healthz -----------------------------------------------------------------------------


def test_healthz_ok_and_ignores_tokens(web: httpx.Client) -> None:
    r = web.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert web.get("/healthz", headers={"Authorization": "token nope"}).json() == {"status": "ok"}


def test_healthz_says_503_while_the_store_fails(
    runtime: LocalRuntime, web: httpx.Client, client: httpx.Client
) -> None:
    did = daisi_id(client, "Add Two Numbers")
    assert runtime.process is not None
    pid = runtime.process.pid
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, resource.RLIM_INFINITY))
    try:
        r = client.post(
            f"/v1/daisies/{did}/executions", json={"endpoint": "compute", "arguments": {}}
        )
        assert r.status_code == 422  # a bad submission writes nothing: still healthy
        assert web.get("/healthz").status_code == 200
        r = client.post("/v1/blobs", content=b"x" * 200_000)
        assert r.status_code in (503, 507), r.text
        r = web.get("/healthz")
        assert r.status_code == 503, r.text
        assert r.json()["status"] == "failing" and "store" in r.json()["reason"]
        assert r.headers["retry-after"] == "1"
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
    assert client.post("/v1/blobs", content=b"y" * 200_000).status_code == 201
    assert web.get("/healthz").json() == {"status": "ok"}


# -- /metrics -----------------------------------------------------------------------------


def test_metrics_move_with_executions_and_requests(
    runtime: LocalRuntime, web: httpx.Client, client: httpx.Client
) -> None:
    did = daisi_id(client, "Add Two Numbers")
    name = "local/Add Two Numbers"
    route = "/pebble-api/v1/daisies/{daisi_id}/executions"
    before = scrape(web)
    for _ in range(2):
        assert submit(client, did, "compute", {"firstNumber": 1, "secondNumber": 2})
    probe = daisi_id(client, "Web Probe")
    assert submit(client, probe, "fail", {})["status"] == "FAILED"
    client.get("/no/such/route")
    after = scrape(web)

    def moved(sample: str, **labels: str) -> float:
        return value(after, sample, **labels) - value(before, sample, **labels)

    assert moved("daisi_executions_total", daisi=name, status="QUEUED") == 2
    assert moved("daisi_executions_total", daisi=name, status="FINISHED") == 2
    assert moved("daisi_executions_total", daisi="local/Web Probe", status="FAILED") == 1
    assert moved("daisi_execution_duration_seconds_count", daisi=name, status="FINISHED") == 2
    assert moved("daisi_execution_duration_seconds_sum", daisi=name, status="FINISHED") > 0
    assert moved("daisi_http_requests_total", method="POST", route=route, status="201") == 3
    assert moved("daisi_http_request_duration_seconds_count", method="POST", route=route) == 3
    assert moved("daisi_http_requests_total", method="GET", route="(unmatched)", status="404") == 1
    assert value(after, "daisi_workers", daisi=name) == 1
    assert value(after, "daisi_workers_target", daisi="local/Web Probe") == 2
    assert value(after, "daisi_queue_depth", daisi=name) == 0


def test_made_up_methods_share_one_label(web: httpx.Client, client: httpx.Client) -> None:
    """Each method name a client sends would otherwise be a label (a series) of its own:
    those no route serves (WebDAV's, say) are counted together as ``other``."""
    before = scrape(web)
    for method in ("PROPFIND", "MKCOL", "REPORT"):
        assert client.request(method, "/capabilities").status_code == 405
    after = scrape(web)
    route = "/pebble-api/capabilities"
    assert (
        value(after, "daisi_http_requests_total", method="other", route=route, status="405")
        - value(before, "daisi_http_requests_total", method="other", route=route, status="405")
        == 3
    )
    methods = {dict(labels).get("method") for _, labels in after}
    assert not methods & {"PROPFIND", "MKCOL", "REPORT"}


def test_queue_depth_and_running_are_live(web: httpx.Client, client: httpx.Client) -> None:
    probe = daisi_id(client, "Web Probe")
    ids = [submit(client, probe, "slow", {"seconds": 120}, wait=0)["id"] for _ in range(3)]
    try:
        samples = wait_until(
            lambda: (
                (s := scrape(web))
                and value(s, "daisi_executions_running", daisi="local/Web Probe") == 2
                and s
            ),
            what="two slow runs to be running",
        )
        assert value(samples, "daisi_queue_depth", daisi="local/Web Probe") == 1
        assert value(samples, "daisi_workers_idle", daisi="local/Web Probe") == 0
    finally:
        for eid in ids:
            assert client.post(f"/v1/executions/{eid}/cancel").status_code == 200
    samples = scrape(web)
    assert value(samples, "daisi_queue_depth", daisi="local/Web Probe") == 0
    assert (
        value(samples, "daisi_executions_total", daisi="local/Web Probe", status="CANCELLED") >= 3
    )


def test_metrics_never_name_a_private_daisi(web: httpx.Client, client: httpx.Client) -> None:
    secret = daisi_id(client, "alice/Secret Garden", ALICE)
    assert submit(client, secret, "recipe", {"x": 1}, ALICE)["status"] == "FINISHED"
    text = web.get("/metrics").text
    assert "Secret Garden" not in text and secret not in text
    samples = scrape(web)
    assert value(samples, "daisi_executions_total", daisi="(private)", status="FINISHED") >= 1


# -- OpenAPI ------------------------------------------------------------------------------


def _route_paths() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in routes_v1.routes:
        path = re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path)  # type: ignore[attr-defined]
        for method in route.methods or ():  # type: ignore[attr-defined]
            if method != "HEAD":
                found.add((path, method.lower()))
    return found


def test_openapi_lists_every_v1_route_and_nothing_else() -> None:
    document = openapi_document()
    documented = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    }
    assert documented == _route_paths()
    assert ("/v1/executions", "get") in documented and ("/v1/events", "get") in documented


def test_openapi_is_a_valid_document(web: httpx.Client) -> None:
    validate = pytest.importorskip("openapi_spec_validator").validate
    r = web.get("/pebble-api/openapi.json")
    assert r.status_code == 200
    served = r.json()
    assert served["servers"] == [{"url": str(web.base_url).rstrip("/") + "/pebble-api"}]
    validate(served)
    assert served["paths"] == openapi_document()["paths"]


def test_openapi_reply_schemas_match_replies(client: httpx.Client) -> None:
    validator = pytest.importorskip("openapi_schema_validator")
    document = openapi_document()
    did = daisi_id(client, "Add Two Numbers")
    done = submit(client, did, "compute", {"firstNumber": 1, "secondNumber": 2})
    page = client.get("/v1/executions").json()
    for name, instance in (("Execution", done), ("ExecutionList", page)):
        schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
        validator.validate(instance, schema, cls=validator.OAS31Validator)


def test_a_legacy_only_server_serves_operations_but_no_page(tmp_path: Path) -> None:
    root = write_daisies(tmp_path / "daisies")
    with LocalRuntime(root, legacy_only=True) as rt, httpx.Client(base_url=rt.url) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert "daisi_http_requests_total" in c.get("/metrics").text
        for path in ("/", "/executions", "/pebble-api/openapi.json", "/pebble-api/v1/events"):
            r = c.get(path)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert c.get("/pebble-api/daisies/connect", params={"name": "Add Two Numbers"}).is_success
