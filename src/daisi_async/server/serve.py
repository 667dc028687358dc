"""Run the runtime under uvicorn on a socket bound before startup (so ``--port 0`` works)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path

import uvicorn

from .app import create_app
from .engine import RuntimeConfig
from .header_timeout import protocol_class
from .store import Store


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns on TCP_NODELAY for accepted sockets only
    # when the listening socket says TCP (else every reply waits on delayed ACKs).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


def url_of(sock: socket.socket) -> str:
    """The base URL clients use to reach ``sock``."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(
    config: RuntimeConfig,
    *,
    host: str,
    port: int,
    ready_file: Path | None = None,
    header_timeout: float = 5.0,
    limit_concurrency: int | None = 1000,
    http: str = "auto",
) -> None:
    """Serve until SIGINT/SIGTERM; write ``{"url", "pid"}`` to ``ready_file`` once ready.

    A connection that has not sent complete request headers ``header_timeout`` seconds
    after opening (or after the first byte of its next request) gets 408 and is closed;
    a request arriving while ``limit_concurrency`` connections are open (or requests
    running) gets 503 at once. ``http``: the parser, ``"auto"`` (httptools when
    installed), ``"h11"`` or ``"httptools"``.

    The store is opened first: a second server on the same store stops here with
    :class:`~.store.StoreLockedError`, before it binds a port.
    """
    protocol = protocol_class(header_timeout=header_timeout, prefer=http)
    store = Store(config.store_dir, synchronous=config.sync)
    store.open()
    try:
        sock = bind(host, port)
    except BaseException:
        store.close()
        raise
    config.base_url = url_of(sock)

    def ready() -> None:
        if ready_file is not None:
            tmp = ready_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"url": config.base_url, "pid": os.getpid()}))
            os.replace(tmp, ready_file)
        print(f"daisi runtime serving {config.root} at {config.base_url}", flush=True)

    app = create_app(config, on_ready=ready, store=store)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http=protocol,
            limit_concurrency=limit_concurrency,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_keep_alive=30,
            backlog=2048,
        )
    )
    await server.serve(sockets=[sock])


def run(
    config: RuntimeConfig,
    *,
    host: str,
    port: int,
    ready_file: Path | None = None,
    header_timeout: float = 5.0,
    limit_concurrency: int | None = 1000,
    http: str = "auto",
) -> None:
    """Blocking entry point used by the CLI; uvicorn stops cleanly on SIGINT and SIGTERM."""
    asyncio.run(
        serve(
            config,
            host=host,
            port=port,
            ready_file=ready_file,
            header_timeout=header_timeout,
            limit_concurrency=limit_concurrency,
            http=http,
        )
    )
