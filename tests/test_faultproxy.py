"""Self-tests of the fault-injecting proxy (tests/support/faultproxy.py)."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from support.faultproxy import (
    FaultProxy,
    delay,
    drop_mid_stream,
    reset_after_forward,
    reset_before,
    status,
)
from support.http_server import http_server


class _Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, bytes]] = []
    release = threading.Event()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _reply(self, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path, b""))
        if self.path.startswith("/stream"):
            # Chunked NDJSON: the second line waits until the test has read the first.
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(3):
                line = json.dumps({"n": i}).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
                if i == 0 and "gate" in self.path:
                    self.release.wait(5)
            self.wfile.write(b"0\r\n\r\n")
            return
        self._reply(json.dumps({"path": self.path}).encode())

    def do_POST(self) -> None:
        body = self._body()
        self.seen.append(("POST", self.path, body))
        self._reply(
            json.dumps(
                {"path": self.path, "body": body.decode(), "te": self.headers["te"]}
            ).encode()
        )


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with http_server(_Upstream) as url:
        yield url


@pytest.fixture
def proxy(upstream: str) -> Iterator[FaultProxy]:
    _Upstream.seen.clear()
    _Upstream.release.clear()
    with FaultProxy(upstream) as p:
        yield p


def test_forwards_and_records(proxy: FaultProxy) -> None:
    with httpx.Client(base_url=proxy.url) as c:
        assert c.get("/a?x=1").json() == {"path": "/a?x=1"}
        r = c.post("/b", content=b"hello")
        assert r.json()["body"] == "hello"
        assert r.headers["connection"] == "close"
    assert proxy.requests == [("GET", "/a"), ("POST", "/b")]
    assert [e.target for e in proxy.log] == ["/a?x=1", "/b"]
    assert all(e.forwarded and e.status == 200 for e in proxy.log)


def test_chunked_request_body_is_forwarded(proxy: FaultProxy) -> None:
    def gen() -> Iterator[bytes]:
        yield b"abc"
        yield b"def"

    with httpx.Client(base_url=proxy.url) as c:
        assert c.post("/chunked", content=gen()).json()["body"] == "abcdef"
    assert proxy.log[0].body == b"abcdef"


def test_streams_are_relayed_as_they_arrive(proxy: FaultProxy) -> None:
    with httpx.Client(base_url=proxy.url) as c, c.stream("GET", "/stream?gate=1") as r:
        lines = r.iter_lines()
        assert json.loads(next(lines)) == {"n": 0}  # before upstream sends the rest
        _Upstream.release.set()
        assert [json.loads(x) for x in lines if x] == [{"n": 1}, {"n": 2}]


def test_status_fault_counts_down(proxy: FaultProxy) -> None:
    proxy.add_rule(
        method="GET", path_contains="/x", times=2, action=status(503, {"Retry-After": "1"})
    )
    with httpx.Client(base_url=proxy.url) as c:
        r = c.get("/x")
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert c.get("/y").status_code == 200  # not matching
        assert c.get("/x").status_code == 503
        assert c.get("/x").status_code == 200
    assert [e.forwarded for e in proxy.log] == [False, True, False, True]
    assert [p for _, p, _ in _Upstream.seen] == ["/y", "/x"]


def test_reset_before_does_not_forward(proxy: FaultProxy) -> None:
    proxy.add_rule(method="POST", action=reset_before())
    with httpx.Client(base_url=proxy.url) as c:
        with pytest.raises(httpx.TransportError):
            c.post("/z", content=b"1")
        assert c.post("/z", content=b"2").json()["body"] == "2"
    assert [b for _, _, b in _Upstream.seen] == [b"2"]


def test_reset_after_forward_processes_the_request(proxy: FaultProxy) -> None:
    proxy.add_rule(path_contains="/once", action=reset_after_forward())
    with httpx.Client(base_url=proxy.url) as c, pytest.raises(httpx.TransportError):
        c.post("/once", content=b"payload")
    assert _Upstream.seen == [("POST", "/once", b"payload")]
    assert proxy.log[0].forwarded


@pytest.mark.parametrize(("lines", "nbytes", "expect"), [(1, 0, 1), (0, 3, 0), (2, 5, 2)])
def test_drop_mid_stream(proxy: FaultProxy, lines: int, nbytes: int, expect: int) -> None:
    proxy.add_rule(path_contains="/stream", action=drop_mid_stream(nbytes, after_lines=lines))
    got: list[str] = []
    with (
        httpx.Client(base_url=proxy.url) as c,
        pytest.raises(httpx.TransportError),
        c.stream("GET", "/stream") as r,
    ):
        assert r.status_code == 200
        got.extend(r.iter_lines())
    assert [json.loads(x) for x in got[:expect]] == [{"n": i} for i in range(expect)]
    assert len([x for x in got if x.endswith("}")]) == expect


def test_drop_mid_content_length_body(proxy: FaultProxy) -> None:
    proxy.add_rule(path_contains="/len", action=drop_mid_stream(4))
    with httpx.Client(base_url=proxy.url) as c, pytest.raises(httpx.TransportError):
        c.get("/len")


def test_delay(proxy: FaultProxy) -> None:
    proxy.add_rule(path_contains="/slow", action=delay(0.3))
    with httpx.Client(base_url=proxy.url) as c:
        t0 = time.monotonic()
        assert c.get("/slow").status_code == 200
        assert time.monotonic() - t0 >= 0.28


def test_stopped_proxy_refuses(upstream: str) -> None:
    p = FaultProxy(upstream).start()
    url = p.url
    p.stop()
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
