"""A plain threaded HTTP server on a free loopback port, for tests that need a server
that is not a Daisi runtime (a web site, garbage replies, a proxy's upstream).

Example:
    >>> with http_server(Handler, mode="html") as url:  # doctest: +SKIP
    ...     httpx.get(url)
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["http_server"]


@contextlib.contextmanager
def http_server(
    handler: type[http.server.BaseHTTPRequestHandler], **attributes: Any
) -> Iterator[str]:
    """Serve ``handler`` in a thread; yields the base URL. ``attributes`` are set on the
    server (handlers read them as ``self.server.<name>``)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    for name, value in attributes.items():
        setattr(server, name, value)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
