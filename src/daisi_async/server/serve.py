"""Run the runtime under uvicorn on a socket bound before startup (so ``--port 0`` works)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import socket
import sys
from pathlib import Path

import uvicorn

from .app import create_app
from .engine import RuntimeConfig
from .gctuning import tune_gc
from .header_timeout import protocol_class
from .store import Store
from .summary import startup_summary

LOG_LEVELS = ("debug", "info", "warning", "error")
"""``--log-level``: the startup summary always shows; ``info`` adds the access log."""


LIMIT_CONCURRENCY = 4096
"""Open connections (or running requests) past which a request gets 503, by default:
room for a few thousand event streams, within what one process may hold open."""

_SPARE_DESCRIPTORS = 512
"""File descriptors kept beside the connections: the store, blobs, workers' pipes."""


def descriptors_for(connections: int) -> int:
    """Raise this process's soft limit on open files so that ``connections`` fit beside
    the store's and the workers' (up to the hard limit); returns the soft limit now."""
    try:
        import resource
    except ImportError:  # not on this platform
        return connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + _SPARE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if new > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
    return int(soft)


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
    limit_concurrency: int | None = LIMIT_CONCURRENCY,
    http: str = "auto",
    log_level: str = "warning",
) -> None:
    """Serve until SIGINT/SIGTERM; once ready, print the startup summary
    (:mod:`.summary`) and write ``{"url", "pid"}`` to ``ready_file``.

    A connection that has not sent complete request headers ``header_timeout`` seconds
    after opening (or after the first byte of its next request) gets 408 and is closed;
    a request arriving while ``limit_concurrency`` connections are open (or requests
    running) gets 503 at once. ``http``: the parser, ``"auto"`` (httptools when
    installed), ``"h11"`` or ``"httptools"``. ``log_level`` (one of :data:`LOG_LEVELS`)
    is the level of the console log; at ``info`` and ``debug`` it has the access log.

    The store is opened first: a second server on the same store stops here with
    :class:`~.store.StoreLockedError`, before it binds a port.
    """
    level = log_level.lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}, not {log_level!r}")
    protocol = protocol_class(header_timeout=header_timeout, prefer=http)
    if limit_concurrency is not None:
        descriptors_for(limit_concurrency)
    store = Store(config.store_dir, synchronous=config.sync)
    store.open()
    try:
        sock = bind(host, port)
    except BaseException:
        store.close()
        raise
    config.base_url = url_of(sock)

    def ready() -> None:
        parser = "httptools" if "HttpTools" in protocol.__name__ else "h11"
        server = f"uvicorn, {parser} parser, {running_loop()} event loop"
        print(startup_summary(app.state.runtime, server=server), flush=True)
        if ready_file is not None:
            tmp = ready_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"url": config.base_url, "pid": os.getpid()}))
            os.replace(tmp, ready_file)

    _console_log(level)
    app = create_app(config, on_ready=ready, store=store)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http=protocol,
            limit_concurrency=limit_concurrency,
            log_level=level,
            access_log=level in ("debug", "info"),
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
    limit_concurrency: int | None = LIMIT_CONCURRENCY,
    http: str = "auto",
    loop: str = "auto",
    log_level: str = "warning",
) -> None:
    """Blocking entry point used by the CLI; uvicorn stops cleanly on SIGINT and SIGTERM.

    ``loop``: the event loop, ``"auto"`` (uvloop when installed), ``"asyncio"`` or
    ``"uvloop"`` (:class:`ImportError` when it is not installed).
    """
    tune_gc()  # this process only serves: see gctuning
    coro = serve(
        config,
        host=host,
        port=port,
        ready_file=ready_file,
        header_timeout=header_timeout,
        limit_concurrency=limit_concurrency,
        http=http,
        log_level=log_level,
    )
    if event_loop(loop) == "uvloop":
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)


LOOPS = ("auto", "asyncio", "uvloop")
"""``--loop``: the event loop ``daisi serve`` runs on."""


def event_loop(loop: str) -> str:
    """The event loop ``loop`` (one of :data:`LOOPS`) stands for: ``"uvloop"`` or
    ``"asyncio"``. ``"auto"`` picks uvloop when it is installed (a third less CPU per
    request than asyncio's loop).

    Raises:
        ValueError: an unknown name.
        ImportError: ``"uvloop"`` when it is not installed.

    Example:
        >>> event_loop("asyncio")
        'asyncio'
    """
    if loop not in LOOPS:
        raise ValueError(f"loop must be one of {', '.join(LOOPS)}, not {loop!r}")
    if loop == "asyncio":
        return loop
    if importlib.util.find_spec("uvloop") is None:
        if loop == "uvloop":
            raise ImportError("--loop uvloop needs uvloop: pip install uvloop")
        return "asyncio"
    return "uvloop"


def running_loop() -> str:
    """The name of the running event loop: ``"uvloop"`` or ``"asyncio"``."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.startswith("uvloop") else "asyncio"


def _console_log(level: str) -> None:
    """The runtime's own log (``daisi_async.server``) on stderr at ``level``, in the
    HTTP server's format (``WARNING:  ...``)."""
    from uvicorn.logging import DefaultFormatter

    logger = logging.getLogger("daisi_async.server")
    for old in [h for h in logger.handlers if getattr(h, "daisi_console", False)]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s"))
    handler.daisi_console = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level.upper())
