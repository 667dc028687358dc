"""The two faces are one API: every public name of one face is in the other, except the
deliberate differences listed here (and in the README's table, with the reasons)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from daisi_async import AsyncDaisi, Daisi
from daisi_async.testing import LocalRuntime

# Per pair of classes: async name -> blocking name (None: no counterpart, on purpose), and
# the names only the blocking face has. Everything else is spelt the same on both.
RENAMED: dict[str, dict[str, str | None]] = {
    "Daisi": {
        "aclose": "close",  # each protocol's own name (async with / with)
        "connect": None,  # Daisi(...) connects when created, as pydaisi's does
        "list": "get_daisies",  # pydaisi's name
    },
    "DaisiExecution": {},
    "DaisiMapExecution": {
        "aclose": "close",
        "closed": None,  # the blocking map shows what pydaisi's showed
        "endpoint": None,
        "max_concurrency": None,
        "ordered": None,
        "return_exceptions": None,
    },
    "Workers": {},
}
SYNC_ONLY: dict[str, set[str]] = {
    "Daisi": {"run_parallel"},  # pydaisi's; async code uses asyncio.gather
    "DaisiExecution": {"value", "stream_logs", "stream_status"},  # pydaisi's .value; a
    # blocking face can't be awaited and iterated at once, so the live forms are methods
    "DaisiMapExecution": {"value", "daisi"},  # pydaisi's .value (async: await the run)
    "Workers": set(),
}


def _public(obj: object) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_faces_differ_only_where_listed(echo_runtime: LocalRuntime) -> None:
    async def names_of_async() -> dict[str, set[str]]:
        d = await AsyncDaisi.connect("Echo", base_url=echo_runtime.url)
        try:
            objects = {
                "Daisi": d,
                "DaisiExecution": d.echo(1),
                "DaisiMapExecution": d.map("echo", [1]),
                "Workers": d.workers,
            }
            return {key: _public(obj) for key, obj in objects.items()}
        finally:
            await d.aclose()

    async_side = asyncio.run(names_of_async())
    with Daisi("Echo", base_url=echo_runtime.url) as d:
        sync_side = {
            "Daisi": d,
            "DaisiExecution": d.echo(1),
            "DaisiMapExecution": d.map("echo", [1]),
            "Workers": d.workers,
        }
        for key, async_names in async_side.items():
            renamed = RENAMED[key]
            mapped = {renamed.get(n, n) for n in async_names} - {None}
            assert mapped | SYNC_ONLY[key] == _public(sync_side[key]), key


def test_keyword_names_match_or_are_pydaisi_s() -> None:
    """Settings and map options are spelt alike; only ``map``'s first two parameters take
    pydaisi's names (``func``, ``args_list``) on the blocking face."""
    a = inspect.signature(AsyncDaisi).parameters
    s = inspect.signature(Daisi).parameters
    assert set(a) - set(s) == {"client"}  # a client is bound to its event loop
    assert set(s) <= set(a)
    am = list(inspect.signature(AsyncDaisi.map).parameters)
    sm = list(inspect.signature(Daisi.map).parameters)
    assert am[3:] == sm[3:] and sm[1:3] == ["func", "args_list"]


@pytest.mark.anyio
async def test_the_catalogue_is_the_same_on_both_faces(daisi_runtime: LocalRuntime) -> None:
    def still(daisies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What does not change while the server runs (not a Daisi's workers)."""
        return [{k: v for k, v in d.items() if k not in ("state", "workers")} for d in daisies]

    listed = await AsyncDaisi.list(base_url=daisi_runtime.url)
    assert still(Daisi.get_daisies(base_url=daisi_runtime.url)) == still(listed)
    assert all({"id", "name", "owner", "description"} <= set(d) for d in listed)
    # A v1 server also says what each Daisi offers and how it is doing.
    assert all({"endpoints", "state", "broken", "public"} <= set(d) for d in listed)
