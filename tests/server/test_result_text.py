"""Any string survives the trip back: results, errors and replies holding unpaired
UTF-16 surrogates are served (ASCII-escaped JSON), never a 500.
"""

from __future__ import annotations

import base64
import json
import textwrap
from collections.abc import Iterator
from typing import Any

import dill
import httpx
import pytest

from daisi_async import Daisi, DaisiExecutionError
from daisi_async.testing import LocalRuntime

ODD_APP = """
def text() -> str:
    return "a\\ud800b"


def nested() -> dict:
    return {"k\\udc00": ["\\ud800", "ok \\u00e9"], "n": 1}


def as_tuple() -> tuple:
    return ("\\udfff", b"bytes")


def fails() -> None:
    raise ValueError("bad \\ud800 text")
"""


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    """A runtime serving "Odd Text", whose results and errors hold unpaired surrogates."""
    root = tmp_path_factory.mktemp("odd-daisies")
    (root / "odd").mkdir()
    (root / "odd" / "daisi.toml").write_text('name = "Odd Text"\n')
    (root / "odd" / "app.py").write_text(textwrap.dedent(ODD_APP))
    with LocalRuntime(root) as rt:
        yield rt


ODD_RESULTS = {
    "text": "a\ud800b",
    "nested": {"k\udc00": ["\ud800", "ok \u00e9"], "n": 1},
    "as_tuple": ("\udfff", b"bytes"),
}


def ndjson(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def result_value(result: dict[str, Any]) -> Any:
    if result["encoding"] == "json":
        return result["value"]
    return dill.loads(base64.b64decode(result["data"]))


@pytest.mark.parametrize("endpoint", list(ODD_RESULTS))
def test_results_holding_any_string_are_retrievable_everywhere(
    odd: LocalRuntime, endpoint: str
) -> None:
    expected = ODD_RESULTS[endpoint]
    with httpx.Client(base_url=odd.api, timeout=60) as c:
        did = c.get("/v1/daisies/Odd Text").json()["id"]
        r = c.post(
            f"/v1/daisies/{did}/executions", params={"wait": 30}, json={"endpoint": endpoint}
        )
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "FINISHED"
        assert result_value(r.json()["result"]) == expected
        eid = r.json()["id"]
        for params in ({"result": 1}, {"wait": 5}):
            r = c.get(f"/v1/executions/{eid}", params=params)
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == "application/json"
            assert r.content.isascii()
            assert result_value(r.json()["result"]) == expected
        r = c.get(f"/v1/executions/{eid}/result")
        assert r.status_code == 200, r.text
        if r.headers["content-type"] == "application/json":
            assert json.loads(r.content) == expected
            assert (
                len(r.content) == c.get(f"/v1/executions/{eid}?result=1").json()["result"]["size"]
            )
        else:
            assert dill.loads(r.content) == expected
        r = c.post("/v1/executions/wait", json={"ids": [eid]})
        done = ndjson(r)[0]
        assert done["type"] == "done" and result_value(done["execution"]["result"]) == expected
        item = {"daisi_id": did, "endpoint": endpoint}
        r = c.post("/v1/executions", params={"wait": 30}, json={"executions": [item]})
        lines = ndjson(r)
        assert [x["type"] for x in lines] == ["submitted", "done", "end"]
        assert result_value(lines[1]["execution"]["result"]) == expected
        # Legacy: the download is dill; results_map too.
        r = c.get(f"/pebbles/{did}/executions/{eid}/results", params={"download": True})
        assert r.status_code == 200, r.text
        assert dill.loads(base64.b64decode(r.json()["results"])) == expected
        r = c.post(f"/pebbles/{did}/results_map", json={"executions": [{"id": eid}]})
        assert r.status_code == 200, r.text
        assert dill.loads(base64.b64decode(r.json()[0]["result"])) == expected
        # The client gets back exactly what the Daisi returned.
        with Daisi("Odd Text", base_url=odd.url) as d:
            assert getattr(d, endpoint)().value == expected
        assert "unexpected error" not in odd.logs()


def test_errors_holding_any_string_are_shown(odd: LocalRuntime) -> None:
    with httpx.Client(base_url=odd.api, timeout=60) as c:
        did = c.get("/v1/daisies/Odd Text").json()["id"]
        r = c.post(f"/v1/daisies/{did}/executions", params={"wait": 30}, json={"endpoint": "fails"})
        assert r.status_code == 201, r.text
        err = r.json()["error"]
        # Text from workers is stored with code points UTF-8 can't hold escaped, visibly.
        assert err["type"] == "builtins.ValueError" and err["message"] == "bad \\ud800 text"
        eid = r.json()["id"]
        assert c.get(f"/v1/executions/{eid}").json()["error"] == err
        r = c.post("/v1/executions/wait", json={"ids": [eid]})
        assert ndjson(r)[0]["execution"]["error"] == err
        r = c.get(f"/v1/executions/{eid}/events")
        assert r.status_code == 200 and "FAILED" in r.text
        for download in (True, False):
            r = c.get(f"/pebbles/{did}/executions/{eid}/results", params={"download": download})
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "FAILED"
        with Daisi("Odd Text", base_url=odd.url) as d:
            with pytest.raises(DaisiExecutionError) as info:
                _ = d.fails().value
            assert "bad \\ud800 text" in str(info.value)
        assert "unexpected error" not in odd.logs()


def test_valid_surrogate_pairs_and_other_text_are_accepted(client: httpx.Client) -> None:
    # A pair of JSON escapes is one character (here U+1F600), not a bad surrogate; raw
    # UTF-8 and a UTF-16 body without surrogates are text too.
    did = client.get("/v1/daisies/Print Hello").json()["id"]
    text = '{"endpoint": "hello", "arguments": {"name": {"value": "h\u00e9 \U0001f600"}}}'
    for body in (
        b'{"endpoint": "hello", "arguments": {"name": {"value": "h\\u00e9 \\ud83d\\ude00"}}}',
        text.encode("utf-8"),
        text.encode("utf-16"),
    ):
        r = client.post(f"/v1/daisies/{did}/executions", params={"wait": 30}, content=body)
        assert r.status_code == 201, r.text
        assert r.json()["result"]["value"] == "Hello h\u00e9 \U0001f600!"
