"""Arguments and results: strict JSON inline, dill for the rest, exact round trips."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from daisi_async import (
    AsyncDaisi,
    AsyncDaisiExecution,
    DaisiExecutionError,
    DaisiSerializationError,
)
from daisi_async._serialization import dumps, is_strict_json, loads
from daisi_async.testing import LocalRuntime


def test_strict_json() -> None:
    assert is_strict_json({"a": [1, 2.5, None, True, "x"]})
    for value in [(1, 2), {1, 2}, b"x", {1: "a"}, float("nan"), np.int64(1), [(1,)]]:
        assert not is_strict_json(value), value


NOT_UNICODE = [
    "a\ud800b",
    "\udc80",
    "x\udfff\ud800y",
    "\ud83d\ude00",  # a surrogate pair as two code points: not the emoji, and not Unicode
    ["ok", "caf\u00e9", "\ud800"],
    {"k\udc80": 1},
    {"k": {"deep": ["\udbff"]}},
]


@pytest.mark.parametrize("value", NOT_UNICODE, ids=ascii)
def test_strings_that_are_not_unicode_are_not_strict_json(value: object) -> None:
    assert not is_strict_json(value)


def test_unicode_strings_are_strict_json() -> None:
    assert is_strict_json("caf\u00e9 \U0001f600 \u4e2d")
    assert is_strict_json({"\u00e9": ["\U0001f600", "ascii", ""]})


def test_loads_names_both_versions_on_mismatch() -> None:
    remote = {"python": "2.7.18", "dill": "0.2.9"}
    with pytest.raises(DaisiSerializationError, match=r"made with Python 2\.7\.18 / dill 0\.2\.9"):
        loads(b"not a pickle", remote=remote)


def test_dumps_names_the_argument() -> None:
    with pytest.raises(DaisiSerializationError, match="argument 'lock'") as info:
        dumps((x for x in [1]), param="lock")
    assert info.value.param == "lock"
    assert loads(dumps({1, 2})) == {1, 2}


@pytest.mark.anyio
@pytest.mark.parametrize(
    "value",
    [(1, 2), {1, 2}, b"\x00bytes", {1: "int key"}, [1, (2, 3)], 1.5, "lookup:abc", None],
    ids=repr,
)
async def test_round_trip_is_exact(echo_runtime: LocalRuntime, value: object) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        back = await d.echo(value)
        assert back == value and type(back) is type(value)


def _code_points(value: str) -> list[int]:
    return [ord(c) for c in value]


@pytest.mark.anyio
@pytest.mark.parametrize("value", NOT_UNICODE, ids=ascii)
async def test_strings_that_are_not_unicode_round_trip(
    echo_runtime: LocalRuntime, value: object
) -> None:
    """As an argument and back as a result, exactly (both ways through dill)."""
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        back = await d.echo(value)
        assert back == value and type(back) is type(value)
        assert await d.type_name(value) == type(value).__name__


@pytest.mark.anyio
@pytest.mark.parametrize(
    "text", ["a\ud800b", "\udc80", "\ud83d\ude00", "caf\u00e9 \U0001f600"], ids=ascii
)
async def test_a_result_that_is_not_unicode(echo_runtime: LocalRuntime, text: str) -> None:
    """Made by the Daisi (the argument is plain JSON), fetched both by the wait and by a
    plain GET of the execution (re-attach)."""
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        ex = d.text(_code_points(text))
        assert await ex == text
        again = await AsyncDaisiExecution.from_id(d, ex.id or "")
        assert await again == text
        assert await d.echo({"nested": [await d.text(_code_points(text))]}) == {"nested": [text]}


@pytest.mark.anyio
async def test_lookup_literal_arrives_unchanged(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        assert await d.type_name("lookup:not-a-reference") == "str"
        assert await d.echo("lookup:not-a-reference") == "lookup:not-a-reference"


@pytest.mark.anyio
async def test_numpy_round_trip(echo_runtime: LocalRuntime) -> None:
    arr = np.arange(200_000, dtype=np.float64).reshape(400, 500)
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        back = await d.echo(arr)
        assert isinstance(back, np.ndarray) and np.array_equal(back, arr)


@pytest.mark.anyio
async def test_unpicklable_argument_fails_before_sending(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        ex = d.echo(value=(x for x in [1]))
        with pytest.raises(DaisiSerializationError, match="argument 'value'"):
            await ex.start()
        assert ex.id is None


class _OnlyHere:
    """A class the worker can't import (it lives in this test module)."""

    def __init__(self) -> None:
        self.x = 1


@pytest.mark.anyio
async def test_argument_the_worker_cannot_open(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        with pytest.raises(DaisiExecutionError) as info:
            await d.echo(value=_OnlyHere())
        assert info.value.exc_type == "daisi.ArgumentError"
        message = str(info.value)
        assert "argument 'value'" in message
        # Both sides' versions are named, so a mismatch is plain to see.
        assert "this worker runs Python" in message and "this client runs Python" in message


MAIN_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    import numpy as np
    from daisi_async import AsyncDaisi

    class MapStack:
        def __init__(self, nx, ny):
            self.nx = nx
            self.ny = ny
            self.nb_layers = None
            self.maps = []

        def add_layer(self, map):
            if len(map.shape) == 2 and map.shape[0] == self.ny and map.shape[1] == self.nx:
                self.maps.append(map)
                self.nb_layers = len(self.maps)
                return "Map successfully added."
            return "Could not add map. Incompatible dimensions."

    async def main():
        async with AsyncDaisi("exampledaisies/Daisi Serialize", base_url=sys.argv[1]) as d:
            ms = MapStack(20, 20)
            for _ in range(10):
                ms.add_layer(np.random.rand(20, 20))
            back = await d.compute(map_stack=ms, map=np.random.rand(20, 20))
            print(type(back).__name__, back.nb_layers, len(back.maps))
            made = await d.make_stack(nx=3, ny=2, layers=2)
            print(type(made).__name__, made.nb_layers, made.maps[0].shape)

    asyncio.run(main())
    """
)


def test_main_class_travels_by_value(daisi_runtime: LocalRuntime, tmp_path: Path) -> None:
    """A class defined in the caller's __main__ reaches the Daisi and comes back; a class
    defined in the Daisi comes back to a caller that lacks the Daisi's code."""
    script = tmp_path / "main_class.py"
    script.write_text(MAIN_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), daisi_runtime.url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["MapStack 11 11", "MapStack 2 (2, 3)"]
