"""``AsyncDaisi.list_executions`` / ``Daisi.list_executions``: the caller's executions,
newest first, filtered and paged as ``GET /v1/executions`` answers them."""

from __future__ import annotations

import httpx
import pytest

from daisi_async import AsyncDaisi, Daisi, DaisiError
from daisi_async._dialects.v1 import dialect as v1
from daisi_async.testing import LocalRuntime

pytestmark = pytest.mark.anyio

CLOSED = "http://127.0.0.1:9"
"""Nothing listens there: a request would fail with DaisiConnectionError."""


async def test_newest_first_filtered_and_paged(
    echo_runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = echo_runtime.url
    async with AsyncDaisi("Echo", base_url=url) as d:
        made = [await d.echo_(i) for i in range(5)]
        for ex in made:
            await ex
        failed = await d.add_("a", 1)
        await failed.wait()
    ids = [ex.id for ex in reversed(made)]
    mine = {"daisi": "Echo", "base_url": url}
    listed = await AsyncDaisi.list_executions(status="finished", limit=5, **mine)
    assert [r["id"] for r in listed] == ids
    assert {r["endpoint"] for r in listed} == {"echo"} and listed[0]["result"] is None
    async with httpx.AsyncClient(base_url=echo_runtime.api) as client:
        raw = await client.get("/v1/executions", params={"daisi": "Echo", "limit": 6})
    six = await AsyncDaisi.list_executions(limit=6, **mine)
    assert [r["id"] for r in six] == [r["id"] for r in raw.json()["executions"]]
    only_failed = await AsyncDaisi.list_executions(status=["FAILED"], limit=1, base_url=url)
    assert [r["id"] for r in only_failed] == [failed.id]
    older = await AsyncDaisi.list_executions(daisi="Echo", before=ids[1], limit=2, base_url=url)
    assert [r["id"] for r in older] == ids[2:4]
    # Pages of 2: the client asks as many times as it takes, and no more.
    monkeypatch.setattr(v1, "LIST_PAGE", 2)
    paged = await AsyncDaisi.list_executions(daisi="Echo", status="FINISHED", limit=5, base_url=url)
    assert [r["id"] for r in paged] == ids


def test_the_blocking_face_lists_the_same(echo_runtime: LocalRuntime) -> None:
    with Daisi("Echo", base_url=echo_runtime.url) as d:
        eid = d.echo(1).start()
        assert d.execution(eid).value == 1
    listed = Daisi.list_executions(daisi="Echo", limit=3, base_url=echo_runtime.url)
    assert listed[0]["id"] == eid and len(listed) == 3


@pytest.mark.parametrize(
    ("filters", "error", "message"),
    [
        ({"limit": 0}, ValueError, "limit must be at least 1, not 0"),
        ({"limit": "5"}, TypeError, "limit must be an int, not str"),
        ({"limit": True}, TypeError, "limit must be an int, not bool"),
        ({"status": "DONE"}, ValueError, "status must be one of QUEUED, RUNNING"),
        ({"status": "not_started"}, ValueError, "not 'not_started'"),
        ({"status": [1]}, TypeError, "status must be a str or a list of str"),
        ({"daisi": ""}, ValueError, "daisi"),
        ({"before": 5}, TypeError, "before"),
    ],
)
async def test_bad_filters_are_refused_before_anything_is_sent(
    filters: dict[str, object], error: type[Exception], message: str
) -> None:
    # The server URL is closed: reaching it would raise DaisiConnectionError instead.
    with pytest.raises(error, match=message):
        await AsyncDaisi.list_executions(base_url=CLOSED, **filters)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        Daisi.list_executions(base_url=CLOSED, **filters)  # type: ignore[arg-type]


async def test_an_unknown_daisi_is_not_found(echo_runtime: LocalRuntime) -> None:
    with pytest.raises(DaisiError, match="no Daisi named 'Nope'"):
        await AsyncDaisi.list_executions(daisi="Nope", base_url=echo_runtime.url)
