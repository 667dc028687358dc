"""Framing between the runtime and its worker processes.

A frame is an 8-byte prefix ``struct.pack("!II", header_len, body_len)``, then
``header_len`` bytes of UTF-8 JSON (an object), then ``body_len`` bytes of body.
The same framing is used in both directions over the worker's socket.

The worker reads with the blocking :func:`read_frame`; the server (asyncio)
reads with :func:`read_frame_async`. Neither side ever unpickles a body here:
bodies are opaque bytes.

The server reads headers with ``orjson`` (about 5x faster), the worker program with
the standard library (a Daisi's own environment may lack ``orjson``). What ``orjson``
refuses (a lone surrogate a Daisi printed, ``NaN``) is read by the standard library, so
a header means the same either way. Headers are written by the standard library: a
request's JSON may hold ``NaN``, which ``orjson`` would write as ``null``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # imported where used: the worker program reads frames without asyncio
    import asyncio

PREFIX = struct.Struct("!II")
"""The frame prefix: header length, body length (network byte order)."""

MAX_HEADER_SIZE = 64 * 2**20
"""The largest JSON header accepted (a guard against a corrupted stream)."""

_dumps = json.JSONEncoder(separators=(",", ":")).encode
_loads = json.JSONDecoder().decode
_fast_loads: Callable[[bytes], Any] | None
try:
    from orjson import loads as _fast_loads
except ImportError:  # a Daisi's environment without orjson
    _fast_loads = None


class Readable(Protocol):
    """A blocking byte stream: ``read(n)`` gives ``n`` bytes, or fewer at its end."""

    def read(self, n: int, /) -> bytes: ...


class FrameError(Exception):
    """The byte stream does not hold a well-formed frame."""


def encode_head(header: Mapping[str, Any], body_len: int = 0) -> bytes:
    """Encode the prefix and JSON header of a frame whose body has ``body_len`` bytes.

    Send the body right after the returned bytes.
    """
    head = _dumps(header).encode("utf-8")
    return PREFIX.pack(len(head), body_len) + head


def encode(header: Mapping[str, Any], body: bytes = b"") -> bytes:
    """Encode a whole frame (prefix, header and body) as one ``bytes`` object."""
    return encode_head(header, len(body)) + body


def _decode_header(raw: bytes, *, fast: bool = False) -> dict[str, Any]:
    # ``fast``: only for headers the worker program writes, which hold no integer past
    # 64 bits (``orjson`` would read it as a float).
    if fast and _fast_loads is not None:
        try:
            header = _fast_loads(raw)
        except ValueError:  # orjson.JSONDecodeError: a lone surrogate, or not JSON at all
            pass
        else:
            if isinstance(header, dict):
                return header
    try:
        header = _loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FrameError(f"malformed frame header: {exc}") from None
    if not isinstance(header, dict):
        raise FrameError("malformed frame header: not a JSON object")
    return header


def _check_prefix(prefix: bytes) -> tuple[int, int]:
    head_len, body_len = PREFIX.unpack(prefix)
    if head_len > MAX_HEADER_SIZE:
        raise FrameError(f"frame header too large ({head_len} bytes)")
    return head_len, body_len


def read_frame(stream: Readable) -> tuple[dict[str, Any], bytes] | None:
    """Read one frame from a blocking binary stream (e.g. ``sock.makefile("rb")``).

    Returns ``(header, body)``, or ``None`` at a clean end of stream (before a
    frame starts). Raises :class:`FrameError` on a truncated or malformed frame.
    """
    prefix = stream.read(PREFIX.size)
    if not prefix:
        return None
    if len(prefix) < PREFIX.size:
        raise FrameError("truncated frame prefix")
    head_len, body_len = _check_prefix(prefix)
    raw = stream.read(head_len)
    if len(raw) < head_len:
        raise FrameError("truncated frame header")
    body = stream.read(body_len) if body_len else b""
    if len(body) < body_len:
        raise FrameError("truncated frame body")
    return _decode_header(raw), body


async def read_frame_async(reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes] | None:
    """Read one frame from an asyncio stream.

    Returns ``(header, body)``, or ``None`` at a clean end of stream (before a
    frame starts). Raises :class:`FrameError` on a truncated or malformed frame.
    """
    import asyncio  # a dictionary lookup once loaded; kept out of the worker's imports

    try:
        prefix = await reader.readexactly(PREFIX.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise FrameError("truncated frame prefix") from None
    head_len, body_len = _check_prefix(prefix)
    try:
        raw = await reader.readexactly(head_len)
        body = await reader.readexactly(body_len) if body_len else b""
    except asyncio.IncompleteReadError:
        raise FrameError("truncated frame") from None
    return _decode_header(raw, fast=True), body
