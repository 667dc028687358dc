"""What the runtime tells the person who started it, besides the startup summary: one
line on stderr, marked ``daisi runtime:``.

Example:
    >>> say("connected to the Dask scheduler")  # doctest: +SKIP
    daisi runtime: connected to the Dask scheduler
"""

from __future__ import annotations

import sys

__all__ = ["say"]


def say(message: str) -> None:
    """Print ``message`` on the console (stderr), at once."""
    print(f"daisi runtime: {message}", file=sys.stderr, flush=True)
