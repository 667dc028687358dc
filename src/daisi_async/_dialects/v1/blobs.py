"""Binary payloads: arguments uploaded as raw dill blobs, large results streamed down.

Neither way copies a large payload whole: an argument's large buffers are sent from
where they are (:mod:`..._pickle_parts`), and a large result is unpickled while it
arrives (:mod:`..._stream_load`), its large buffers read straight into their objects.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import dill
import httpx

from ..._failures import json_of, replies, reply_errors
from ..._pickle_parts import dump_parts
from ..._serialization import LOCAL_VERSIONS, is_strict_json, load_failure, loads
from ..._socket_body import SocketBody
from ..._socket_get import open_get
from ..._stream_load import load_stream
from ..._transport import Transport, stream_errors
from ..base import Ref
from .routes import execution_path

__all__ = ["STREAM_LOAD_MIN", "Blobs"]

STREAM_LOAD_MIN = 1 << 20
"""Results at least this large are unpickled while they arrive (smaller: at once)."""


class Blobs:
    """Uploads and downloads of one server's blobs."""

    def __init__(self, transport: Transport, remote_versions: dict[str, str] | None) -> None:
        self.transport = transport
        self.remote_versions = remote_versions

    @property
    def api(self) -> str:
        """The server's API root (for messages)."""
        return self.transport.api

    async def encode(self, args: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Arguments as v1 Argument objects; non-JSON values are uploaded as dill blobs."""
        out: dict[str, dict[str, Any]] = {}
        for name, value in args.items():
            if isinstance(value, Ref):
                out[name] = {"execution": value.execution_id}
            elif is_strict_json(value):
                out[name] = {"value": value}
            else:
                out[name] = {"blob": await self.upload(dump_parts(value, param=name))}
        return out

    @replies
    async def upload(self, data: bytes | memoryview | list[memoryview]) -> str:
        """Store dill bytes (or their parts, in order) on the server; returns the blob key."""
        r = await self.transport.request(
            "POST",
            "/v1/blobs",
            content=data,
            headers={
                "content-type": "application/octet-stream",
                "x-daisi-python": LOCAL_VERSIONS["python"],
                "x-daisi-dill": LOCAL_VERSIONS["dill"],
            },
            idempotent=True,
        )
        return str(json_of(r)["key"])

    @replies
    async def download(self, eid: str, size: int) -> Any:
        """Fetch a large result and open it: while it arrives if it is large, else
        from one buffer (no intermediate copies). A large one is read from its socket
        (:mod:`..._socket_get`) where nothing else must see its bytes."""
        if size >= STREAM_LOAD_MIN:
            body = await open_get(self.transport, execution_path(eid, "/result"))
            if body is not None:
                with reply_errors(self.transport.api + execution_path(eid, "/result")):
                    return await body.run(lambda: self._open(body))
        async with self.transport.stream("GET", execution_path(eid, "/result")) as response:
            length = int(response.headers.get("content-length") or size or 0)
            is_json = response.headers.get("content-type", "").startswith("application/json")
            if not is_json and length >= STREAM_LOAD_MIN:
                with stream_errors(response), self._unpickling():
                    return await load_stream(response.aiter_raw())
            buf = bytearray(length)
            view = memoryview(buf)
            pos = 0
            with stream_errors(response):
                async for chunk in response.aiter_raw(1 << 20):
                    end = pos + len(chunk)
                    if end > length:  # longer than announced: grow (rare)
                        view.release()
                        buf.extend(bytes(end - length))
                        length = end
                        view = memoryview(buf)
                    view[pos:end] = chunk
                    pos = end
            view.release()
            del buf[pos:]
            if is_json:
                return json.loads(buf)
        return loads(memoryview(buf), remote=self.remote_versions)

    def _open(self, body: SocketBody) -> Any:
        """The value in ``body`` (in a worker thread): unpickled while it is read."""
        if body.content_type.startswith("application/json"):
            return json.loads(body.read())
        if body.length < STREAM_LOAD_MIN:
            return loads(memoryview(body.read()), remote=self.remote_versions)
        with self._unpickling():
            value = dill.Unpickler(body).load()
        body.finish()  # the whole body arrived, as announced
        return value

    @contextlib.contextmanager
    def _unpickling(self) -> Iterator[None]:
        """Unpickling a download: a transfer error stays as it is, any other error is
        the result's (:func:`load_failure`, with the versions if they differ)."""
        try:
            yield
        except httpx.HTTPError:
            raise
        except Exception as exc:
            raise load_failure(exc, self.remote_versions) from exc
