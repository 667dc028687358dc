"""Text that is not valid Unicode (unpaired UTF-16 surrogates) in requests: 400 naming the field.

JSON can carry ``"\\ud800"``; such text must be refused where bodies are read, before
anything is created, whatever the route or field. The guard of test_bad_input (nothing
created, a good call still works, no unexpected error) applies here too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.server import test_bad_input
from tests.server.test_bad_input import error, legacy_submit, v1_submit

# The fixtures and the autouse guard of test_bad_input (nothing created, good call after).
ids = test_bad_input.ids
done = test_bad_input.done
nothing_created = test_bad_input.nothing_created

BAD_TEXTS = ["\ud800", "a\udfffb", "\udc00\ud800", "x" * 1000 + "\udbff"]


def unicode_cases(ids: dict[str, str], done: str, bad: str) -> dict[str, tuple[str, str, Any, str]]:
    """Requests with one bad string: (method, path, JSON body, the param named)."""
    add = did = ids["add"]
    two = {"firstNumber": {"value": 1}, "secondNumber": {"value": 2}}
    key = json.dumps(bad)
    return {
        "v1-value": (
            "POST",
            v1_submit(ids),
            {"endpoint": "compute", "arguments": {**two, "firstNumber": {"value": bad}}},
            "arguments.firstNumber.value",
        ),
        "v1-nested-value": (
            "POST",
            v1_submit(ids),
            {
                "endpoint": "compute",
                "arguments": {**two, "secondNumber": {"value": {"a": [1, {"b": bad}]}}},
            },
            "arguments.secondNumber.value.a[1].b",
        ),
        "v1-argument-name": (
            "POST",
            v1_submit(ids),
            {"endpoint": "compute", "arguments": {**two, bad: {"value": 1}}},
            f"arguments[{key}]",
        ),
        "v1-endpoint": (
            "POST",
            v1_submit(ids),
            {"endpoint": "comp" + bad, "arguments": two},
            "endpoint",
        ),
        "v1-blob-key": (
            "POST",
            v1_submit(ids),
            {"endpoint": "compute", "arguments": {**two, "firstNumber": {"blob": bad}}},
            "arguments.firstNumber.blob",
        ),
        "batch-daisi-id": (
            "POST",
            "/v1/executions",
            {"executions": [{"daisi_id": add + bad, "endpoint": "compute", "arguments": two}]},
            "executions[0].daisi_id",
        ),
        "batch-idempotency-key": (
            "POST",
            "/v1/executions",
            {
                "executions": [
                    {"daisi_id": add, "endpoint": "compute", "arguments": two},
                    {
                        "daisi_id": add,
                        "endpoint": "compute",
                        "arguments": two,
                        "idempotency_key": bad,
                    },
                ]
            },
            "executions[1].idempotency_key",
        ),
        "batch-execution-id": (
            "POST",
            "/v1/executions",
            {
                "executions": [
                    {
                        "daisi_id": add,
                        "endpoint": "compute",
                        "arguments": {**two, "firstNumber": {"execution": done + bad}},
                    }
                ]
            },
            "executions[0].arguments.firstNumber.execution",
        ),
        "legacy-value": (
            "POST",
            legacy_submit(ids),
            {"firstNumber": bad, "secondNumber": 1},
            "firstNumber",
        ),
        "legacy-lookup": (
            "POST",
            legacy_submit(ids),
            {"firstNumber": "lookup:" + done + bad, "secondNumber": 1},
            "firstNumber",
        ),
        "legacy-name": (
            "POST",
            legacy_submit(ids),
            {"firstNumber": 1, "secondNumber": 1, bad: 1},
            f"[{key}]",
        ),
        "map-id": (
            "POST",
            f"/pebbles/{did}/map",
            {
                "executions": [
                    {"id": str(uuid.uuid4()) + bad, "endpoint": "compute", "arguments": {}}
                ]
            },
            "executions[0].id",
        ),
        "map-argument": (
            "POST",
            f"/pebbles/{did}/map",
            {
                "executions": [
                    {"endpoint": "compute", "arguments": {"firstNumber": 1, "secondNumber": 2}},
                    {"endpoint": "compute", "arguments": {"firstNumber": bad, "secondNumber": 2}},
                ]
            },
            "executions[1].arguments.firstNumber",
        ),
        "map-endpoint": (
            "POST",
            f"/pebbles/{did}/map",
            {"executions": [{"endpoint": bad, "arguments": {}}]},
            "executions[0].endpoint",
        ),
        "results-map-id": (
            "POST",
            f"/pebbles/{did}/results_map",
            {"executions": [{"id": done}, {"id": bad}]},
            "executions[1].id",
        ),
        "pickle-data": ("POST", "/pebbles/pickle", {"data": "gAVLAS4=" + bad}, "data"),
        "wait-ids": ("POST", "/v1/executions/wait", {"ids": [done, bad]}, "ids[1]"),
        "workers-legacy": ("POST", f"/daisies/workers/{did}", {"worker_number": 1, "x": bad}, "x"),
        "workers-v1": ("PUT", f"/v1/daisies/{did}/workers", {"number": bad}, "number"),
    }


UNICODE_CASES = list(unicode_cases({"add": "", "hello": ""}, "", "\ud800"))


@pytest.mark.parametrize("case", UNICODE_CASES)
@pytest.mark.parametrize("bad", BAD_TEXTS, ids=["high", "low", "reversed", "long"])
def test_text_that_is_not_unicode_is_400_naming_the_field(
    client: httpx.Client, ids: dict[str, str], done: str, case: str, bad: str
) -> None:
    method, path, body, param = unicode_cases(ids, done, bad)[case]
    content = json.dumps(body).encode()  # "\ud800" escapes: ASCII JSON, as a client sends
    r = client.request(method, path, content=content, headers={"content-type": "application/json"})
    err = error(r, 400, "bad_request")
    assert err["param"] == param
    assert "Unicode" in err["message"] and param in err["message"]


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("utf-8", "surrogatepass"),  # raw surrogate bytes (CESU-8)
        lambda text: text.encode("utf-16", "surrogatepass"),
        lambda text: text.encode("utf-32-le", "surrogatepass"),
        lambda text: json.dumps(json.loads(text), ensure_ascii=True).encode("utf-16-be"),
    ],
    ids=["utf-8-raw", "utf-16", "utf-32", "utf-16-escaped"],
)
def test_surrogates_in_any_encoding_are_400(
    client: httpx.Client, ids: dict[str, str], encode: Callable[[str], bytes]
) -> None:
    text = '{"endpoint": "compute", "arguments": {"firstNumber": {"value": "\ud800"}}}'
    r = client.post(v1_submit(ids), content=encode(text))
    assert error(r, 400, "bad_request")["param"] == "arguments.firstNumber.value"
    r = client.post(
        legacy_submit(ids), content=encode('{"firstNumber": "\udfff", "secondNumber": 1}')
    )
    assert error(r, 400, "bad_request")["param"] == "firstNumber"


def test_a_whole_body_that_is_not_unicode_is_400(client: httpx.Client, ids: dict[str, str]) -> None:
    r = client.post(v1_submit(ids), content=b'"\\ud800"')
    err = error(r, 400, "bad_request")
    assert "param" not in err and "Unicode" in err["message"]
