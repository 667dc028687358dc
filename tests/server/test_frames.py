"""Frame headers read the same on the server (``orjson`` first) as in the worker program
(the standard library), for every header a worker may write."""

from __future__ import annotations

import asyncio
import io
import math
import struct

import pytest

from daisi_async.server._frames import FrameError, encode, read_frame, read_frame_async

HEADERS = [
    {"op": "done", "eid": "e1", "ok": True, "size": 3, "json": "3", "next": "e2"},
    {"op": "log", "eid": "e1", "stream": "stdout", "line": "a lone \ud800 surrogate"},
    {"op": "log", "eid": "e1", "stream": "stderr", "line": "snow \N{SNOWMAN} and \x00"},
    {"op": "done", "eid": "e1", "ok": False, "error": {"type": "E", "message": "m\udfff"}},
]


def _read_async(data: bytes) -> tuple[dict[str, object], bytes] | None:
    async def main() -> tuple[dict[str, object], bytes] | None:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await read_frame_async(reader)

    return asyncio.run(main())


@pytest.mark.parametrize("header", HEADERS)
def test_the_server_and_the_worker_read_a_header_alike(header: dict[str, object]) -> None:
    frame = encode(header, b"body")
    assert _read_async(frame) == read_frame(io.BytesIO(frame)) == (header, b"body")


def test_a_nan_in_a_header_reads_as_nan_on_both_sides() -> None:
    frame = encode({"op": "done", "value": float("nan")})
    got, _ = _read_async(frame) or ({}, b"")
    assert isinstance(got["value"], float) and math.isnan(got["value"])


@pytest.mark.parametrize(
    ("raw", "message"),
    [(b"[1, 2]", "not a JSON object"), (b"{nope", "malformed"), (b"\xff{}", "malformed")],
)
def test_a_bad_header_is_a_frame_error_on_the_server(raw: bytes, message: str) -> None:
    frame = struct.pack("!II", len(raw), 0) + raw
    with pytest.raises(FrameError, match=message):
        _read_async(frame)
    with pytest.raises(FrameError, match=message):
        read_frame(io.BytesIO(frame))
