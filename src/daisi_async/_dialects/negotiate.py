"""Which dialect a server speaks, and whether it is a Daisi server at all.

A server is a Daisi runtime if ``GET /capabilities`` answers the Daisi shape
(``{"protocol": "daisi", "versions": [1, ...]}``): it gets the v1 dialect. Otherwise it
may be a legacy Daisi platform: it gets the legacy dialect on probation, which raises
:class:`~.._errors.DaisiProtocolError` naming the URL unless the legacy routes answer
like a Daisi server.
"""

from __future__ import annotations

from typing import Any

import httpx

from .._failures import RETRY_STATUSES, error_body, error_from_response
from .._log import logger
from .._transport import Transport
from .base import Dialect
from .legacy import LegacyDialect
from .v1 import V1Dialect

__all__ = ["choose_dialect"]

_CLIENT_ERRORS = frozenset(range(400, 500)) - RETRY_STATUSES


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _is_daisi(caps: Any) -> bool:
    if not isinstance(caps, dict) or caps.get("protocol") != "daisi":
        return False
    versions = caps.get("versions")
    return isinstance(versions, list) and 1 in versions


async def choose_dialect(transport: Transport) -> Dialect:
    """The best dialect the server speaks: v1 when advertised, else legacy (on probation).

    A Daisi error reply from ``/capabilities`` other than 404 (a refused token, say)
    raises its error at once.
    """
    r = await transport.request("GET", "/capabilities", allow=_CLIENT_ERRORS)
    caps = _json(r)
    if r.is_success and _is_daisi(caps):
        logger.info("using the v1 protocol of %s", transport.base_url)
        return V1Dialect(transport, caps)
    if not r.is_success and r.status_code != 404 and error_body(caps) is not None:
        raise error_from_response(r)
    ctype = r.headers.get("content-type", "no content type").split(";")[0]
    why = f"GET {r.request.url} answered {r.status_code} ({ctype}), not the Daisi capabilities"
    logger.info("%s: trying the legacy (pydaisi) routes", why)
    return LegacyDialect(transport, probation=why)
