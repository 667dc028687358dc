"""A real fault-injecting HTTP/1.1 reverse proxy for tests (stdlib only, thread-based).

It listens on 127.0.0.1 (an ephemeral port), forwards every request to an upstream base
URL and relays the reply as it arrives (streamed NDJSON and SSE bodies are never
buffered), unless a rule says otherwise::

    with FaultProxy(runtime.url) as proxy:
        proxy.add_rule(method="POST", path_contains="/v1/executions", action=reset_before())
        ...  # talk to proxy.url

Threads rather than an event loop, so the same proxy serves tests on asyncio and trio.
Each client connection gets one request and a ``Connection: close`` reply; each
forwarded request gets a fresh upstream connection.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import urlsplit

__all__ = [
    "Delay",
    "DropMidStream",
    "Fault",
    "FaultProxy",
    "Logged",
    "ResetAfterForward",
    "ResetBefore",
    "Status",
    "delay",
    "drop_mid_stream",
    "reset_after_forward",
    "reset_before",
    "status",
]

_MAX_HEADER_BYTES = 64 * 1024
_REPLY_KEPT = 64 * 1024  # how much of each reply body the log keeps
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    408: "Request Timeout",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


# -- faults --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResetBefore:
    """Reset the client connection (RST) without forwarding the request."""


@dataclass(frozen=True)
class Status:
    """Answer ``code`` (with ``headers`` and ``body``) without forwarding the request."""

    code: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class ResetAfterForward:
    """Forward, read the whole upstream reply, then reset the client: the request WAS
    processed but the client never sees the answer."""


@dataclass(frozen=True)
class DropMidStream:
    """Forward and relay the reply's head, then ``after_lines`` complete body lines
    (``\\n``-terminated) and ``after_bytes`` more body bytes, then reset the client."""

    after_bytes: int = 0
    after_lines: int = 0


@dataclass(frozen=True)
class Delay:
    """Forward normally after ``seconds``."""

    seconds: float


Fault = ResetBefore | Status | ResetAfterForward | DropMidStream | Delay


def reset_before() -> ResetBefore:
    """Close the client connection abruptly (RST) without forwarding."""
    return ResetBefore()


def status(code: int, headers: dict[str, str] | None = None, body: bytes = b"") -> Status:
    """Answer ``code`` without forwarding, e.g. ``status(503, {"Retry-After": "1"})``."""
    return Status(code, dict(headers or {}), body)


def reset_after_forward() -> ResetAfterForward:
    """Forward, read the full upstream reply, then RST the client."""
    return ResetAfterForward()


def drop_mid_stream(after_bytes: int = 0, *, after_lines: int = 0) -> DropMidStream:
    """Forward, relay ``after_lines`` lines then ``after_bytes`` bytes of the body, then RST."""
    return DropMidStream(after_bytes, after_lines)


def delay(seconds: float) -> Delay:
    """Forward after ``seconds``."""
    return Delay(seconds)


# -- bookkeeping ---------------------------------------------------------------------------
@dataclass
class _Rule:
    method: str | None
    path_contains: str | None
    path_regex: re.Pattern[str] | None
    times: int
    action: Fault

    def matches(self, method: str, target: str) -> bool:
        if self.times <= 0:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path_regex is not None and not self.path_regex.search(target.split("?", 1)[0]):
            return False
        return self.path_contains is None or self.path_contains in target


@dataclass
class Logged:
    """One request received by the proxy."""

    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]  # lower-cased names
    body: bytes
    time: float  # time.monotonic() when fully received
    fault: Fault | None = None
    forwarded: bool = False
    status: int | None = None  # the status the client was sent, if any
    reply: bytes = b""  # the first bytes of the reply body relayed (up to _REPLY_KEPT)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


class _Closed(Exception):
    """The peer closed the connection before a complete message."""


class _Reader:
    """Buffered reads on a socket: lines, exact counts, or whatever is available."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def readline(self, limit: int = _MAX_HEADER_BYTES) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            if len(self.buf) > limit:
                raise _Closed("line too long")
            if not self._fill():
                raise _Closed("connection closed mid-line")

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise _Closed("connection closed mid-body")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_some(self, n: int = 65536) -> bytes:
        """Up to ``n`` bytes: what is buffered, else one ``recv`` (b"" at EOF)."""
        if not self.buf and not self._fill():
            return b""
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


def _read_head(reader: _Reader) -> tuple[str, list[tuple[str, str]]]:
    """The start line and the header fields of a message."""
    start = reader.readline().decode("latin-1").rstrip("\r\n")
    headers: list[tuple[str, str]] = []
    total = 0
    while True:
        line = reader.readline().decode("latin-1")
        total += len(line)
        if total > _MAX_HEADER_BYTES:
            raise _Closed("headers too large")
        line = line.rstrip("\r\n")
        if not line:
            return start, headers
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _is_chunked(headers: list[tuple[str, str]]) -> bool:
    te = _header(headers, "transfer-encoding") or ""
    return "chunked" in te.lower()


def _iter_body(
    reader: _Reader, headers: list[tuple[str, str]], *, until_close: bool
) -> Iterator[bytes]:
    """Yield the decoded body as it arrives (chunked, Content-Length, or until close)."""
    if _is_chunked(headers):
        while True:
            size_line = reader.readline().decode("latin-1").strip()
            size = int(size_line.split(";", 1)[0], 16)
            if size == 0:
                while reader.readline() not in (b"\r\n", b"\n"):
                    pass  # trailers
                return
            left = size
            while left:
                data = reader.read_some(left)
                if not data:
                    raise _Closed("connection closed mid-chunk")
                left -= len(data)
                yield data
            reader.read_exact(2)  # the CRLF after the chunk
    length = _header(headers, "content-length")
    if length is not None:
        left = int(length)
        while left:
            data = reader.read_some(min(left, 65536))
            if not data:
                raise _Closed("connection closed mid-body")
            left -= len(data)
            yield data
        return
    if until_close:
        while True:
            data = reader.read_some()
            if not data:
                return
            yield data


def _rst(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER on, timeout 0)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Truncate:
    """Counts body bytes for DropMidStream: how many of the next bytes may still go."""

    def __init__(self, fault: DropMidStream) -> None:
        self.lines = fault.after_lines
        self.bytes = fault.after_bytes

    def take(self, data: bytes) -> tuple[bytes, bool]:
        """The part of ``data`` to relay, and whether the budget is now spent."""
        i = 0
        while self.lines > 0:
            j = data.find(b"\n", i)
            if j < 0:
                return data, False
            i = j + 1
            self.lines -= 1
        rest = len(data) - i
        if rest < self.bytes:
            self.bytes -= rest
            return data, False
        cut = i + self.bytes
        self.bytes = 0
        return data[:cut], True


# -- the proxy -----------------------------------------------------------------------------
class FaultProxy:
    """A reverse proxy on 127.0.0.1 that forwards to ``upstream`` and injects faults.

    ``requests`` lists ``(method, path)`` of every request received, in order; ``log``
    has the details (headers, body, fault applied, whether it was forwarded, timing).
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.upstream_prefix = parts.path.rstrip("/")
        self.url = ""
        self.requests: list[tuple[str, str]] = []
        self.log: list[Logged] = []
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        """Listen and serve in background threads."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self._listener = sock
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept_loop, name="faultproxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (the port then refuses)."""
        self._stopping.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            socks = list(self._sockets)
            threads = list(self._threads)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)
        for t in threads:
            t.join(5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- rules -----------------------------------------------------------------------------
    def add_rule(
        self,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        path_regex: str | None = None,
        times: int = 1,
        action: Fault,
    ) -> None:
        """The next ``times`` requests matching ``method``, ``path_contains`` (a substring
        of the path and query) and ``path_regex`` (searched in the path without the query)
        get ``action``. The first matching rule wins."""
        regex = re.compile(path_regex) if path_regex is not None else None
        with self._lock:
            self._rules.append(_Rule(method, path_contains, regex, times, action))

    def clear_rules(self) -> None:
        """Forget every rule (later requests are forwarded untouched)."""
        with self._lock:
            self._rules.clear()

    def _take_fault(self, method: str, target: str) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, target):
                    rule.times -= 1
                    return rule.action
        return None

    # -- queries used by tests -------------------------------------------------------------
    def count(
        self,
        method: str | None = None,
        path_contains: str | None = None,
        path_regex: str | None = None,
        *,
        forwarded: bool = False,
    ) -> int:
        """How many requests matched (only those forwarded upstream if ``forwarded``)."""
        hits = self.matching(method, path_contains, path_regex)
        return sum(1 for e in hits if e.forwarded or not forwarded)

    def matching(
        self,
        method: str | None = None,
        path_contains: str | None = None,
        path_regex: str | None = None,
    ) -> list[Logged]:
        """The logged requests that match (as :meth:`add_rule` matches), in order."""
        rule = _Rule(
            method, path_contains, re.compile(path_regex) if path_regex else None, 1, ResetBefore()
        )
        with self._lock:
            entries = list(self.log)
        return [e for e in entries if rule.matches(e.method, e.target)]

    # -- serving ---------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                if self._stopping.is_set():
                    conn.close()
                    return
                self._sockets.add(conn)
                self._threads.add(t)
            t.start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            upstream = self._handle(client)
        except (OSError, _Closed, ValueError):
            pass
        finally:
            for s in (client, upstream):
                if s is not None:
                    self._untrack(s)
                    with contextlib.suppress(OSError):
                        s.close()
            with self._lock:
                self._threads.discard(threading.current_thread())

    @staticmethod
    def _answer(client: socket.socket, fault: Status) -> None:
        reason = _REASONS.get(fault.code, "Fault")
        lines = [f"HTTP/1.1 {fault.code} {reason}"]
        names = {k.lower() for k in fault.headers}
        lines += [f"{k}: {v}" for k, v in fault.headers.items() if k.lower() not in _HOP_BY_HOP]
        if "content-type" not in names and fault.body:
            lines.append("Content-Type: application/octet-stream")
        lines.append(f"Content-Length: {len(fault.body)}")
        lines.append("Connection: close")
        client.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + fault.body)

    def _handle(self, client: socket.socket) -> socket.socket | None:
        reader = _Reader(client)
        start, headers = _read_head(reader)
        method, target, _version = start.split(" ", 2)
        body = b"".join(_iter_body(reader, headers, until_close=False))
        entry = Logged(
            method=method.upper(),
            target=target,
            headers={k.lower(): v for k, v in headers},
            body=body,
            time=time.monotonic(),
        )
        fault = self._take_fault(entry.method, target)
        entry.fault = fault
        with self._lock:
            self.log.append(entry)
            self.requests.append((entry.method, entry.path))

        if isinstance(fault, ResetBefore):
            _rst(client)
            return None
        if isinstance(fault, Status):
            self._answer(client, fault)
            entry.status = fault.code
            return None
        if isinstance(fault, Delay) and self._stopping.wait(fault.seconds):
            return None

        upstream = socket.create_connection((self.upstream_host, self.upstream_port), timeout=None)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._track(upstream)
        out = [f"{method} {self.upstream_prefix}{target} HTTP/1.1"]
        for k, v in headers:
            if k.lower() in _HOP_BY_HOP or k.lower() == "host":
                continue
            out.append(f"{k}: {v}")
        out.append(f"Host: {self.upstream_host}:{self.upstream_port}")
        out.append(f"Content-Length: {len(body)}")
        out.append("Connection: close")
        upstream.sendall(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)
        entry.forwarded = True

        up = _Reader(upstream)
        while True:
            status_line, resp_headers = _read_head(up)
            code = int(status_line.split(" ", 2)[1])
            if code >= 200 or code == 101:
                break
        entry.status = code
        no_body = method.upper() == "HEAD" or code in (204, 304) or 100 <= code < 200
        chunked = _is_chunked(resp_headers)
        length = _header(resp_headers, "content-length")
        head = [status_line]
        for k, v in resp_headers:
            if k.lower() in _HOP_BY_HOP:
                continue
            head.append(f"{k}: {v}")
        if not no_body:
            if chunked:
                head.append("Transfer-Encoding: chunked")
            elif length is not None:
                head.append(f"Content-Length: {length}")
        head.append("Connection: close")
        head_bytes = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        body_iter: Iterator[bytes] = (
            iter(()) if no_body else _iter_body(up, resp_headers, until_close=True)
        )

        if isinstance(fault, ResetAfterForward):
            for _ in body_iter:
                pass
            _rst(client)
            return upstream

        client.sendall(head_bytes)
        truncate = _Truncate(fault) if isinstance(fault, DropMidStream) else None
        for data in body_iter:
            spent = False
            if truncate is not None:
                data, spent = truncate.take(data)
            if data:
                if len(entry.reply) < _REPLY_KEPT:
                    entry.reply += data[: _REPLY_KEPT - len(entry.reply)]
                client.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            if spent:
                break
        else:
            if truncate is None:
                if chunked:
                    client.sendall(b"0\r\n\r\n")
                return upstream
        # DropMidStream: let what was relayed reach the client, then reset.
        time.sleep(0.05)
        _rst(client)
        return upstream
