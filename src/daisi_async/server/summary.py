"""What ``daisi serve`` prints once it is ready: the URL, the store, the isolation in
force and the Daisies (loaded, building, broken and why). Read-only: it only looks.

Example:
    >>> print(startup_summary(runtime))  # doctest: +SKIP
    daisi runtime serving /srv/daisies at http://127.0.0.1:8421
      store      /srv/.daisi
      isolation  none
      server     uvicorn, httptools parser, uvloop event loop
      Daisies    3: 1 loaded, 1 building, 1 broken
        loaded    local/Add Two Numbers: compute
        building  local/Titanic Statistics: compute, describe
        broken    local/Bad: SyntaxError: invalid syntax (app.py, line 1)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .workers.state import DaisiState

if TYPE_CHECKING:
    from .engine import Runtime

__all__ = ["isolation_of", "startup_summary"]

LOADED = "loaded"
GROUPS = (LOADED, DaisiState.BUILDING.value, DaisiState.BROKEN.value)


def isolation_of(runtime: Runtime) -> str:
    """The isolation of Daisi code in force, as the runtime says (``"none"`` if it says
    nothing: then Daisies run as the server's user, with its rights)."""
    for holder in (runtime, runtime.config):
        value: Any = getattr(holder, "isolation", None)
        if value:
            return str(getattr(value, "value", value))
    return "none"


def startup_summary(runtime: Runtime, *, server: str | None = None) -> str:
    """The lines ``daisi serve`` prints at startup (see the module docstring); ``server``:
    the HTTP server, its parser and event loop."""
    config = runtime.config
    rows: list[tuple[str, str, str]] = []
    for spec in runtime.registry.all():
        state, reason = runtime.lifecycle.state(spec)
        group = state.value if state in (DaisiState.BUILDING, DaisiState.BROKEN) else LOADED
        detail = reason or ", ".join(spec.endpoints) or "no endpoints"
        rows.append((group, spec.full_name, detail))
    counts = ", ".join(f"{sum(r[0] == g for r in rows)} {g}" for g in GROUPS)
    lines = [
        f"daisi runtime serving {config.root} at {config.base_url}",
        f"  store      {config.store_dir}",
        f"  isolation  {isolation_of(runtime)}",
        *([f"  server     {server}"] if server else []),
        f"  Daisies    {len(rows)}: {counts}" if rows else "  Daisies    none found",
    ]
    width = max(len(g) for g in GROUPS)
    for group, name, detail in sorted(rows, key=lambda r: (GROUPS.index(r[0]), r[1].lower())):
        first, *rest = detail.splitlines() or [""]
        lines.append(f"    {group:<{width}}  {name}: {first}")
        lines.extend(f"    {'':<{width}}    {line}" for line in rest)
    return "\n".join(lines)
