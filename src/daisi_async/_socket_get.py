"""A large download read straight from its socket: one GET, its body in big reads.

httpx reads a body 64 KiB at a time and copies each piece through h11's buffer, which
caps a download near 400-500 MB/s; the socket gives 2 GB/s. :func:`open_get` sends
the GET on a fresh connection (``Connection: close``, ``Accept-Encoding: identity``,
the transport's own headers) and parses the reply's head with h11, strictly. The body
is then read by a worker thread (:class:`~._socket_body.SocketBody`), with blocking
``recv_into`` calls: a large read (the data of a numpy array, say) lands straight in
the object being unpickled, with no buffer and no copy between.

It is used only when nothing else must see the bytes: the transport's requests go
straight to its connection pool (a client daisi-async made: no user client, mounts,
hooks, auth, cookies or proxy), the URL is plain ``http``, and the loop is asyncio.
Otherwise, and for a reply that is not a ``200`` with a ``Content-Length`` and no
transfer or content encoding, :func:`open_get` returns None and the caller uses httpx.
Failures are the httpx exceptions httpx would raise (``ConnectError``, ``ReadTimeout``,
a short body as ``RemoteProtocolError``: never a value), under the client's timeouts
and the transport's retry policy. Cancelling shuts the socket down, which ends the thread's
read at once; nothing is left open or running.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import anyio
import h11
import httpx

from ._dispatch import on_asyncio
from ._socket_body import SocketBody
from ._transport import Transport

__all__ = ["open_get", "usable"]

HEAD = 1 << 16
"""Bytes asked of the socket per read while the reply's head arrives."""
_ENCODED = {"transfer-encoding", "content-encoding"}
opened = 0
"""How many replies this module opened to read their body (for tests)."""


def usable(transport: Transport, url: httpx.URL) -> bool:
    """Whether a GET of ``url`` may bypass ``transport``'s httpx client: where its
    requests already go straight to the connection pool (:attr:`Transport.direct`: a
    client daisi-async made, no proxy, no cookie), over plain ``http``, on asyncio."""
    return transport.direct and url.scheme == "http" and on_asyncio()


@contextlib.contextmanager
def _within(seconds: float | None, late: type[Exception], error: type[Exception]) -> Iterator[None]:
    """A deadline of ``seconds``; it and an OS error raised as httpx's ``late``/``error``."""
    try:
        with anyio.fail_after(seconds):
            yield
    except OSError as exc:  # TimeoutError too
        raise (late if isinstance(exc, TimeoutError) else error)(str(exc) or repr(exc)) from exc


async def _connect(url: httpx.URL, seconds: float | None) -> socket.socket:
    loop = asyncio.get_running_loop()
    with _within(seconds, httpx.ConnectTimeout, httpx.ConnectError):
        found = await loop.getaddrinfo(url.host, url.port or 80, type=socket.SOCK_STREAM)
        for i, (family, kind, proto, _, addr) in enumerate(found):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                await loop.sock_connect(sock, addr)
                return sock
            except BaseException as exc:
                sock.close()
                if i + 1 == len(found) or not isinstance(exc, OSError):
                    raise
    raise httpx.ConnectError(f"no address for {url.host}")


async def _get(sock: socket.socket, url: httpx.URL, headers: dict[str, str], timeout: Any) -> Any:
    """Send the GET; the reply's head (an ``h11.Response``) and the body bytes read with it."""
    loop, conn = asyncio.get_running_loop(), h11.Connection(h11.CLIENT)
    fields = [("Host", url.netloc.decode("ascii")), ("Accept", "*/*"), *headers.items()]
    fields += [("Accept-Encoding", "identity"), ("Connection", "close")]
    request = conn.send(h11.Request(method="GET", target=url.raw_path, headers=fields)) or b""
    with _within(timeout["write"], httpx.WriteTimeout, httpx.WriteError):
        await loop.sock_sendall(sock, request + (conn.send(h11.EndOfMessage()) or b""))
    head, body, buf = None, bytearray(), bytearray(HEAD)
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc)) from exc
        if isinstance(event, h11.Response):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data  # what came with the head (h11 checks it against its length)
        elif head is not None and (event is h11.NEED_DATA or isinstance(event, h11.EndOfMessage)):
            return head, bytes(body)
        elif event is h11.NEED_DATA:
            with _within(timeout["read"], httpx.ReadTimeout, httpx.ReadError):
                n = await loop.sock_recv_into(sock, buf)
            conn.receive_data(bytes(buf[:n]))
        elif not isinstance(event, h11.InformationalResponse):
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")


async def open_get(transport: Transport, path: str) -> SocketBody | None:
    """The body of ``GET path`` read from its socket, or None where httpx must read it
    (see the module's docstring). Errors are httpx's, after the transport's retries."""
    url = httpx.URL(transport.api + path)
    if not usable(transport, url):
        return None
    timeout = transport.client.timeout.as_dict()

    async def once() -> SocketBody | None:
        sock = await _connect(url, timeout["connect"])
        try:
            response, buffered = await _get(sock, url, transport.headers, timeout)
            transport.reached = True
            head = {k.decode("latin-1"): v.decode("latin-1") for k, v in response.headers}
            size = head.get("content-length", "")
            if response.status_code == 200 and size.isdigit() and not {*head} & _ENCODED:
                global opened
                opened += 1
                body = SocketBody(sock, buffered, int(size), head.get("content-type", ""))
                body.timeout = timeout["read"]
                return body
        except BaseException:
            sock.close()
            raise
        sock.close()  # httpx reads this one (and makes the error of an error reply)
        return None

    return await transport.retried(once, idempotent=True, what=f"GET {url}")
