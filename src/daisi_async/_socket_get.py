"""A large download read straight from its socket: one GET, its body in big reads.

httpx reads a body 64 KiB at a time and copies each piece through h11's buffer, which
caps a download near 400-500 MB/s; the socket gives 2 GB/s. :func:`open_get` sends
the GET on a fresh connection (``Connection: close``, ``Accept-Encoding: identity``,
the transport's own headers) and parses the reply's head with h11, strictly. The body
is then read by a worker thread (:meth:`SocketBody.run`), with blocking
``recv_into`` calls: a large read (the data of a numpy array, say) lands straight in
the object being unpickled, with no buffer and no copy between.

It is used only when nothing else must see the bytes: the transport made its own
client (no user client, mounts, hooks, auth or cookies), the URL is plain ``http``
with no proxy for it, and the loop is asyncio. Otherwise, and for a reply that is not
a ``200`` with a ``Content-Length`` and no transfer or content encoding,
:func:`open_get` returns None and the caller uses httpx. Failures are the httpx
exceptions httpx would raise (``ConnectError``, ``ReadTimeout``, a short body as
``RemoteProtocolError``...), under the client's timeouts and the transport's retries.
Cancelling shuts the socket down, which ends the thread's read at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
import h11
import httpx
import sniffio

from ._transport import Transport

__all__ = ["SocketBody", "open_get", "usable"]

T = TypeVar("T")
HEAD_READ = 1 << 16
"""Bytes asked of the socket per read while the head arrives."""
SMALL_READ = 1 << 18
"""Reads smaller than this are served from a buffer refilled this much at a time."""
taken = 0
"""How many bodies were read whole by this module (for tests)."""


def usable(transport: Transport, url: httpx.URL) -> bool:
    """Whether a GET of ``url`` may bypass ``transport``'s httpx client."""
    client = transport.client
    if not transport._owns_client or url.scheme != "http" or client.cookies:
        return False
    if client.auth is not None or any(client.event_hooks.values()):
        return False
    try:
        if sniffio.current_async_library() != "asyncio":
            return False
    except sniffio.AsyncLibraryNotFoundError:
        return False
    pick = getattr(client, "_transport_for_url", None)  # httpx's own choice: env proxies
    return pick is not None and pick(url) is getattr(client, "_transport", None)


class SocketBody:
    """The body of a ``200`` reply: ``length`` bytes, ``buffered`` of them already read.

    A file for an unpickler (``read``, ``readinto``, ``readline``), read by one thread.
    """

    def __init__(self, sock: socket.socket, buffered: bytes, length: int, ctype: str) -> None:
        self.length = length
        self.content_type = ctype
        self.timeout: float | None = None
        self._sock = sock
        self._buf = bytearray(buffered[:length])
        self._pos = 0
        self._left = length - len(self._buf)  # not yet received
        self._lock = threading.Lock()
        self._state = "idle"  # -> "reading" (a thread owns the socket) -> "closed"

    def _recv(self, view: memoryview) -> int:
        if self._state == "closed":
            raise httpx.ReadError("the download was cancelled")
        try:
            n = self._sock.recv_into(view[: self._left])
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc) or repr(exc)) from exc
        if n == 0:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body: "
                f"received {self.length - self._left} bytes, expected {self.length}"
            )
        self._left -= n
        return n

    def readinto(self, target: Any) -> int:
        view = memoryview(target).cast("B")
        n = min(len(view), len(self._buf) - self._pos)
        view[:n] = memoryview(self._buf)[self._pos : self._pos + n]
        self._pos += n
        while n < len(view) and self._left:
            if len(view) - n >= SMALL_READ:
                n += self._recv(view[n:])
                continue
            self._buf = bytearray(min(SMALL_READ, self._left))
            got = self._recv(memoryview(self._buf))
            del self._buf[got:]
            self._pos = k = min(got, len(view) - n)
            view[n : n + k] = memoryview(self._buf)[:k]
            n += k
        return n

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = len(self._buf) - self._pos + self._left
        if self._pos + n <= len(self._buf):
            self._pos += n
            return bytes(self._buf[self._pos - n : self._pos])
        out = bytearray(n)
        del out[self.readinto(out) :]
        return bytes(out)

    def readline(self) -> bytes:
        out = bytearray()
        while not out.endswith(b"\n") and (self._pos < len(self._buf) or self._left):
            if self._pos == len(self._buf):
                self._buf = bytearray(min(SMALL_READ, self._left))
                del self._buf[self._recv(memoryview(self._buf)) :]
                self._pos = 0
            end = self._buf.find(b"\n", self._pos)
            end = len(self._buf) if end < 0 else end + 1
            out += self._buf[self._pos : end]
            self._pos = end
        return bytes(out)

    def finish(self) -> None:
        """Read what is left of the body: it must all arrive (else the transfer failed)."""
        while self.read(SMALL_READ):
            pass

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` (which reads this body) in a worker thread; the socket is closed
        after. Cancelling shuts it down, which ends a read the thread is blocked in."""
        global taken

        def work() -> T:
            with self._lock:
                if self._state == "closed":
                    raise httpx.ReadError("the download was cancelled")
                self._state = "reading"
            try:
                self._sock.settimeout(self.timeout)
                return fn()
            finally:
                self.close()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._abort_when_cancelled)
                try:
                    value = await anyio.to_thread.run_sync(work)
                except Exception:
                    await anyio.lowlevel.checkpoint_if_cancelled()  # cancelled: say so
                    raise
                tg.cancel_scope.cancel()
        finally:
            self.abort()
        taken += 1
        return value

    async def _abort_when_cancelled(self) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            self.abort()

    def abort(self) -> None:
        """Close the socket, or shut it down if a thread is reading it (it closes it)."""
        with self._lock:
            if self._state == "reading":
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)
                return
        self.close()

    def close(self) -> None:
        with self._lock:
            self._state = "closed"
            self._sock.close()


def _fail(
    exc: OSError | TimeoutError,
    timeout: type[httpx.TimeoutException],
    error: type[httpx.TransportError],
) -> httpx.TransportError:
    return (
        timeout(str(exc) or "timed out")
        if isinstance(exc, TimeoutError)
        else error(str(exc) or repr(exc))
    )


async def _connect(url: httpx.URL, seconds: float | None) -> socket.socket:
    loop = asyncio.get_running_loop()
    port = url.port or 80
    last: OSError = OSError("no address")
    try:
        with anyio.fail_after(seconds):
            for family, kind, proto, _, addr in await loop.getaddrinfo(
                url.host, port, type=socket.SOCK_STREAM
            ):
                sock = socket.socket(family, kind, proto)
                try:
                    sock.setblocking(False)
                    await loop.sock_connect(sock, addr)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    return sock
                except BaseException as exc:
                    sock.close()
                    if not isinstance(exc, OSError):
                        raise
                    last = exc
    except (OSError, TimeoutError) as exc:
        raise _fail(exc, httpx.ConnectTimeout, httpx.ConnectError) from exc
    raise httpx.ConnectError(str(last)) from last


async def _head(
    sock: socket.socket, url: httpx.URL, headers: dict[str, str], timeout: dict[str, float | None]
) -> tuple[h11.Response, bytes]:
    loop = asyncio.get_running_loop()
    conn = h11.Connection(h11.CLIENT)
    fields = [
        ("Host", url.netloc.decode("ascii")),
        ("Accept", "*/*"),
        *headers.items(),
        ("Accept-Encoding", "identity"),
        ("Connection", "close"),
    ]
    request = conn.send(h11.Request(method="GET", target=url.raw_path, headers=fields))
    try:
        with anyio.fail_after(timeout.get("write")):
            await loop.sock_sendall(sock, request or b"")
    except (OSError, TimeoutError) as exc:
        raise _fail(exc, httpx.WriteTimeout, httpx.WriteError) from exc
    conn.send(h11.EndOfMessage())
    buf = bytearray(HEAD_READ)
    response: h11.Response | None = None
    body = bytearray()
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise httpx.RemoteProtocolError(str(exc)) from exc
        if event is h11.NEED_DATA:
            if response is not None:
                return response, bytes(body)
            try:
                with anyio.fail_after(timeout.get("read")):
                    n = await loop.sock_recv_into(sock, buf)
            except (OSError, TimeoutError) as exc:
                raise _fail(exc, httpx.ReadTimeout, httpx.ReadError) from exc
            conn.receive_data(bytes(buf[:n]))
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage) and response is not None:
            return response, bytes(body)
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")


async def open_get(transport: Transport, path: str) -> SocketBody | None:
    """The body of ``GET path`` read from its socket, or None where httpx must read it
    (see the module's docstring). Errors are httpx's, after the transport's retries."""
    url = httpx.URL(transport.api + path)
    if not usable(transport, url):
        return None
    timeout = transport.client.timeout.as_dict()

    async def once() -> SocketBody | None:
        sock = await _connect(url, timeout.get("connect"))
        try:
            response, buffered = await _head(sock, url, transport.headers, timeout)
            transport.reached = True
            head = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
            length = head.get("content-length", "")
            if (
                response.status_code != 200
                or not length.isdigit()
                or "transfer-encoding" in head
                or "content-encoding" in head
            ):
                sock.close()
                return None
        except BaseException:
            sock.close()
            raise
        body = SocketBody(sock, buffered, int(length), head.get("content-type", ""))
        body.timeout = timeout.get("read")
        return body

    return await transport.retried(once, idempotent=True, what=f"GET {url}")
