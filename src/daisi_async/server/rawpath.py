"""Route on the path as sent: an encoded slash (``%2F``) stays inside its segment.

ASGI servers hand routers the percent-decoded path, so ``/v1/executions/x%2Fcancel``
would reach the ``/cancel`` route of execution ``x``. This middleware rebuilds the path
from ``raw_path``, decoding everything but ``%2F``; handlers that accept names with a
slash (``owner/name``) unquote their parameter themselves.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["RawPathMiddleware"]

_ENCODED_SLASH = re.compile(r"%2[fF]")


class RawPathMiddleware:
    """ASGI middleware: see the module docstring.

    Example:
        >>> app = RawPathMiddleware(starlette_app)  # doctest: +SKIP
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw: Any = scope.get("raw_path")
        if scope["type"] in ("http", "websocket") and raw and b"%2" in raw:
            text = raw.decode("latin-1").split("?", 1)[0]
            if _ENCODED_SLASH.search(text):
                parts = _ENCODED_SLASH.split(text)
                scope = dict(scope)
                scope["path"] = "%2F".join(unquote(p, errors="replace") for p in parts)
        await self.app(scope, receive, send)
