"""The package's logger, ``logging.getLogger("daisi_async")``: silent unless configured.

It tells about retries (with their cause), the protocol chosen for a server, fallbacks,
and event or wait streams dropped and resumed. Show it with, for example,
``logging.basicConfig(level=logging.INFO)``.
"""

from __future__ import annotations

import logging

__all__ = ["logger"]

logger = logging.getLogger("daisi_async")
logger.addHandler(logging.NullHandler())
