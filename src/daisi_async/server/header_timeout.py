"""A deadline for request headers, which uvicorn does not have (slow-loris protection).

A connection must deliver the complete headers of a request within ``header_timeout``
seconds of opening, or of the first byte of its next request on a kept-alive
connection; otherwise it gets ``408`` and is closed. Idle kept-alive connections stay
under uvicorn's own ``timeout_keep_alive``.

uvicorn takes an HTTP protocol class (``uvicorn.Config(http=...)``); :func:`protocol_class`
returns a small subclass of the one uvicorn would pick itself (httptools when installed,
else h11) with the deadline added.

Example:
    >>> config = uvicorn.Config(app, http=protocol_class(header_timeout=5.0))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["protocol_class"]


def _timeout_reply(seconds: float) -> bytes:
    body = json.dumps(
        {
            "error": {
                "status": 408,
                "code": "request_timeout",
                "message": f"the request headers did not arrive within {seconds:g} s",
            }
        },
        separators=(",", ":"),
    ).encode("ascii")
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode("ascii")
    return head + body


class _Deadline:
    """One connection's header deadline: armed, cancelled, or fired (408, then closed)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        self.loop = loop
        self.seconds = seconds
        self.transport: asyncio.Transport | None = None
        self.handle: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        transport = self.transport
        if self.handle is None and transport is not None and not transport.is_closing():
            self.handle = self.loop.call_later(self.seconds, self._fire)

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def _fire(self) -> None:
        self.handle = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(_timeout_reply(self.seconds))
        if transport.get_write_buffer_size():
            transport.abort()  # a peer that does not read gets no graceful close
        else:
            transport.close()


class _OnTheClock:
    """What both protocols share: a deadline armed on a new connection, stopped on close.

    Mixed in before the uvicorn protocol class, whose ``__init__`` sets ``self.loop``.
    """

    header_timeout = 5.0
    loop: asyncio.AbstractEventLoop

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = _Deadline(self.loop, self.header_timeout)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the clock on a new connection."""
        super().connection_made(transport)  # type: ignore[misc]
        self._deadline.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self._deadline.arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock."""
        self._deadline.cancel()
        super().connection_lost(exc)  # type: ignore[misc]


class H11HeaderTimeout(_OnTheClock, H11Protocol):
    """uvicorn's h11 protocol with a request-header deadline."""

    def data_received(self, data: bytes) -> None:
        """Start the clock on the first byte of a request; stop it once its headers are in."""
        if self.conn.their_state is h11.IDLE:
            self._deadline.arm()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._deadline.cancel()

    def on_response_complete(self) -> None:
        """A pipelined request already partly buffered is on the clock too."""
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:
            self._deadline.arm()


def _httptools_class() -> type[asyncio.Protocol] | None:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is not installed
        return None

    class HttpToolsHeaderTimeout(_OnTheClock, HttpToolsProtocol):
        """uvicorn's httptools protocol with a request-header deadline."""

        def on_message_begin(self) -> None:
            """Start the clock on the first byte of a request."""
            self._deadline.arm()
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            """Stop the clock: the headers are in."""
            self._deadline.cancel()
            super().on_headers_complete()

    return HttpToolsHeaderTimeout


def protocol_class(*, header_timeout: float, prefer: str = "auto") -> type[asyncio.Protocol]:
    """The HTTP protocol class for ``uvicorn.Config(http=...)`` with a header deadline.

    ``prefer``: ``"auto"`` (httptools when installed, else h11, as uvicorn picks),
    ``"h11"`` or ``"httptools"`` (``ImportError`` when it is not installed).
    """
    if header_timeout <= 0:
        raise ValueError("header_timeout must be a positive number of seconds")
    base: type[asyncio.Protocol] | None = None
    if prefer in ("auto", "httptools"):
        base = _httptools_class()
        if base is None and prefer == "httptools":
            raise ImportError("httptools is not installed")
    if base is None:
        base = H11HeaderTimeout
    return type(base.__name__, (base,), {"header_timeout": header_timeout})
