"""The reference server of scenario 1: the least any server of this design can do.

A trivial call on ``daisi serve`` is an HTTP request whose answer waits for one round
trip to a warm worker process and two durable writes (the execution is stored before
it runs and its result before it is reported). This script serves exactly that and
nothing else, on the same HTTP stack (uvicorn, with httptools and uvloop when
installed, and Starlette):

* ``GET /capabilities``: a fixed JSON answer, to compare with the floor;
* ``POST /run`` with the v1 body of ``compute(firstNumber, secondNumber)``: one SQLite
  commit (WAL, ``synchronous=NORMAL``, as the store), one length-prefixed JSON frame to
  a worker process on a socket pair and its answer, a second commit, the JSON answer.

No authentication, idempotency, events, listeners, metrics, logs, time or memory
limits, sandbox or pickling: what ``daisi serve`` costs above this is the price of
those. Scenario 1 times it beside the real server, so the ratio targets can be read
against what this machine allows at all.

Usage: ``python benchmarks/_essential.py PORT_FILE``: it writes its port to
``PORT_FILE`` once it listens, and serves until it is terminated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_LENGTH = struct.Struct(">I")


def _worker(fd: int) -> None:
    """Answer ``{"a": x, "b": y}`` frames with ``{"value": x + y}`` until the end."""
    with socket.socket(fileno=fd) as sock, sock.makefile("rwb", buffering=0) as f:
        while head := f.read(_LENGTH.size):
            job = json.loads(f.read(_LENGTH.unpack(head)[0]))
            out = json.dumps({"value": job["a"] + job["b"]}).encode()
            f.write(_LENGTH.pack(len(out)) + out)


async def _serve(port_file: Path) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    ours, theirs = socket.socketpair()
    worker = subprocess.Popen(  # noqa: ASYNC220 - started once, before serving
        [sys.executable, __file__, "--worker", str(theirs.fileno())], pass_fds=[theirs.fileno()]
    )
    theirs.close()
    reader, writer = await asyncio.open_connection(sock=ours)
    folder = tempfile.TemporaryDirectory(prefix="essential-")
    db = sqlite3.connect(Path(folder.name) / "store.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, status TEXT, args TEXT, result TEXT)")
    one_job = asyncio.Lock()

    def commit(sql: str, params: tuple[Any, ...]) -> int:
        db.execute("BEGIN")
        rowid = db.execute(sql, params).lastrowid or 0
        db.execute("COMMIT")
        return rowid

    async def capabilities(request: Request) -> Response:
        return Response(b'{"protocol":"daisi","versions":[1]}', media_type="application/json")

    async def run(request: Request) -> Response:
        args = json.loads(await request.body())["arguments"]
        rid = commit("INSERT INTO runs (status, args) VALUES ('QUEUED', ?)", (json.dumps(args),))
        job = json.dumps({"a": args["firstNumber"]["value"], "b": args["secondNumber"]["value"]})
        async with one_job:
            writer.write(_LENGTH.pack(len(job)) + job.encode())
            (size,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
            value = json.loads(await reader.readexactly(size))["value"]
        commit("UPDATE runs SET status = 'FINISHED', result = ? WHERE id = ?", (str(value), rid))
        body = {"id": rid, "status": "FINISHED", "result": {"value": value}}
        return Response(json.dumps(body).encode(), media_type="application/json")

    app = Starlette(
        routes=[Route("/capabilities", capabilities), Route("/run", run, methods=["POST"])]
    )
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    listening = socket.create_server(("127.0.0.1", 0))  # connections queue from here on
    written = port_file.with_suffix(".tmp")
    written.write_text(str(listening.getsockname()[1]))
    written.replace(port_file)  # whole, or not there
    serving = uvicorn.Server(config).serve(sockets=[listening])
    try:
        await serving
    finally:
        writer.close()
        worker.wait()
        db.close()
        folder.cleanup()


@contextlib.contextmanager
def essential_server(*, timeout: float = 30.0) -> Iterator[str]:
    """Start this script as a process; yields its base URL; stops it on exit."""
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        proc = subprocess.Popen([sys.executable, __file__, str(port_file)])
        try:
            deadline = time.monotonic() + timeout
            while not port_file.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the reference server did not start")
                time.sleep(0.02)
            yield f"http://127.0.0.1:{port_file.read_text()}"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> None:
    if sys.argv[1] == "--worker":
        _worker(int(sys.argv[2]))
        return
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(Path(sys.argv[1])))
    else:
        uvloop.run(_serve(Path(sys.argv[1])))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
    os._exit(0)
