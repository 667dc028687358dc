"""The JSON text of replies: orjson writes it when it can, and it is the same text the
standard library writes (ASCII escapes, surrogates and big integers kept)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from daisi_async.server import http

VALUES: list[Any] = [
    {"id": "e1", "status": "FINISHED", "created_at": 1700000000.123456, "error": None},
    {"result": {"encoding": "json", "value": [1, 2.5, "x", True, None], "size": 17}},
    {"line": "caf\N{LATIN SMALL LETTER E WITH ACUTE} \N{SNOWMAN}"},
    {"line": "lone \ud800 surrogate"},
    {"big": 2**70, "small": -(2**70), "float": 1e16, "tiny": 5e-324},
    [],
    "text",
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_reply_json_is_the_standard_librarys_ascii_text(value: Any) -> None:
    text = http.dumps(value)
    assert text == json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    assert text.isascii()
    assert json.loads(text) == value


def test_orjson_writes_the_replies_when_installed() -> None:
    pytest.importorskip("orjson")
    assert http._fast is not None


STORED_RESULTS = [
    json.dumps(v, separators=(",", ":"))
    for v in (
        [1, 2.5, "x", True, None],
        {"a": {"b": [2**70]}},
        "caf\N{LATIN SMALL LETTER E WITH ACUTE}",
    )
] + ['"lone \\ud800 surrogate"', '"raw \N{SNOWMAN} text"', json.dumps(1e16)]


@pytest.mark.parametrize("text", STORED_RESULTS, ids=range(len(STORED_RESULTS)))
def test_a_stored_result_is_written_as_if_read_and_written_again(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``JSONText`` goes in verbatim (orjson) or read again (the standard library): the
    reply is the same text either way, the one its value would make."""
    value = json.loads(text)
    expected = json.dumps({"value": value}, ensure_ascii=True, separators=(",", ":"))
    body = {"value": http.JSONText(text)}
    assert http.dumps(body) == expected
    monkeypatch.setattr(http, "_fast", None)  # the standard library alone
    assert http.dumps(body) == expected


def test_something_that_is_not_json_still_fails_to_encode() -> None:
    with pytest.raises(TypeError):
        http.dumps({"value": object()})
