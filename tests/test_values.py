"""One rule for strict JSON and one for sizes, shared by the client and the runtime."""

from __future__ import annotations

import enum
from pathlib import Path

import click
import pytest

from daisi_async import _values
from daisi_async._serialization import is_strict_json
from daisi_async.cli.types import parse_size as cli_parse_size
from daisi_async.server.registry import load_daisi, parse_memory
from daisi_async.server.workers.program import results as _worker_results


class _Colour(enum.IntEnum):
    RED = 1


VALUES = [
    1,
    2.5,
    float("nan"),
    "caf\u00e9",
    "a\ud800b",
    ["ok", "\udc80"],
    {"k\udfff": 1},
    {1: "int key"},
    (1, 2),
    [1, [2, [3]]],
    True,
    None,
    _Colour.RED,
    b"x",
    {"a": {"b": [1, 2.0, None]}},
]


@pytest.mark.parametrize("value", VALUES, ids=ascii)
def test_client_and_worker_agree_on_strict_json(value: object) -> None:
    """The client's inline arguments and the worker's inline results follow one rule."""
    plain, strict = _worker_results.classify(value, json_nodes=1000)
    assert strict == is_strict_json(value)
    if strict:
        assert plain


def test_deep_nesting_is_not_strict_json_anywhere() -> None:
    deep: list[object] = []
    for _ in range(_values.MAX_JSON_DEPTH + 5):
        deep = [deep]
    assert not is_strict_json(deep)
    assert _worker_results.classify(deep, json_nodes=10_000) == (True, False)


def test_a_default_that_is_not_unicode_is_not_a_json_default(tmp_path: Path) -> None:
    """The registry shows such a default by its source text only, as the client sends it."""
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "app.py").write_text(
        'def f(a="\\ud800", b="caf\\u00e9", c=(1, 2), d=[1, {"k": None}]):\n    return a\n'
    )
    params = {p.name: p for p in load_daisi(folder).endpoints["f"].params}
    assert params["a"].default is None and params["a"].default_repr == "'\\ud800'"
    assert params["b"].default == "caf\u00e9"
    assert params["c"].default is None and params["c"].default_repr == "(1, 2)"
    assert params["d"].default == [1, {"k": None}]


SIZES = ["8GB", "512 MiB", "1048576", "1.5k", "3t", "7b", "0", "-1", "5ib", "lots", "2 XB", ""]


@pytest.mark.parametrize("text", SIZES)
def test_cli_and_daisi_toml_read_sizes_alike(text: str) -> None:
    try:
        expected: int | None = parse_memory(text)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(click.BadParameter):
            cli_parse_size(text)
    else:
        assert cli_parse_size(text) == expected


def test_sizes() -> None:
    assert _values.parse_size("8GB") == 8 * 2**30
    assert _values.parse_size("512MiB") == _values.parse_size("512m") == 512 * 2**20
    for bad in ("0", "-1", "5ib", "", True, 1.5, None):
        with pytest.raises(ValueError):
            _values.parse_size(bad)
