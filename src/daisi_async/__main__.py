"""``python -m daisi_async ...`` is the ``daisi`` command."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
