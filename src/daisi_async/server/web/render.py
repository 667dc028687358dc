"""Rendering the web page: Jinja2 templates (autoescaped), Markdown, and view helpers.

Everything a Daisi, its logs or a user wrote reaches the page through Jinja2's
autoescaping (MarkupSafe) or through markdown-it-py with raw HTML disabled (it is shown
as text; ``javascript:`` links are dropped). Pages are served with a Content Security
Policy that runs only the page's own script, so even a mistake can't run injected code.

Example:
    >>> markdown_html("<script>x</script> *hi*")
    Markup('<p>&lt;script&gt;x&lt;/script&gt; <em>hi</em></p>\\n')
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.responses import HTMLResponse

from ..registry import DaisiSpec
from ..registry.schema import Endpoint, Param

__all__ = [
    "CSP",
    "daisi_state",
    "markdown_html",
    "page",
    "short_json",
    "signature",
    "when",
]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""Only the page's own script and style run; nothing is framed or sent elsewhere."""

_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown_html(text: str) -> Markup:
    """``text`` (a Daisi's DAISI.md) as HTML; raw HTML in it is shown as text."""
    return Markup(_markdown.render(text))


def when(seconds: float | None) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS`` (UTC), or an empty string."""
    if seconds is None:
        return ""
    moment = dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def duration(start: float | None, end: float | None) -> str:
    """``end - start`` as ``1.23 s``, or an empty string."""
    if start is None or end is None:
        return ""
    return f"{max(0.0, end - start):.2f} s"


def short_json(value: Any, limit: int = 200) -> str:
    """Compact JSON of ``value``, cut to ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "\N{HORIZONTAL ELLIPSIS}"


def pretty_json(text: str) -> str:
    """Stored JSON text, indented."""
    return json.dumps(json.loads(text), indent=2, ensure_ascii=False)


def daisi_state(body: Mapping[str, Any]) -> tuple[str, str | None]:
    """``(state, reason)`` of a Daisi object: its ``state`` when the server gives one,
    else ``broken`` (with the reason) or ``ready``."""
    raw = body.get("state")
    broken = body.get("broken")
    if isinstance(raw, Mapping):
        name = raw.get("state") or raw.get("name")
        reason = raw.get("reason") or raw.get("message") or broken
        if isinstance(name, str) and name:
            return name, str(reason) if reason else None
    if isinstance(raw, str) and raw:
        reason = body.get("state_reason") or body.get("reason") or broken
        return raw, str(reason) if reason else None
    return ("broken", str(broken)) if broken else ("ready", None)


def _param_text(p: Param) -> str:
    star = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(p.kind, "")
    text = star + p.name
    if p.annotation:
        text += f": {p.annotation}"
    if p.default_repr is not None:
        text += f" = {p.default_repr}" if p.annotation else f"={p.default_repr}"
    return text


def signature(ep: Endpoint) -> str:
    """The Python signature of an endpoint: ``compute(a: int, b: int = 2) -> int``."""
    parts: list[str] = []
    params = list(ep.params)
    for i, p in enumerate(params):
        if p.kind == "KEYWORD_ONLY" and not any(
            q.kind in ("KEYWORD_ONLY", "VAR_POSITIONAL") for q in params[:i]
        ):
            parts.append("*")
        parts.append(_param_text(p))
        following = params[i + 1] if i + 1 < len(params) else None
        if p.kind == "POSITIONAL_ONLY" and (following is None or following.kind != p.kind):
            parts.append("/")
    text = f"{'async ' if ep.is_async else ''}{ep.name}({', '.join(parts)})"
    return text + (f" -> {ep.returns}" if ep.returns else "")


def daisi_href(spec: DaisiSpec, unique: bool = True) -> str:
    """The page of a Daisi: by ``owner/name``, or by id when the name is not unique."""
    if not unique:
        return "/daisies/" + spec.id
    return f"/daisies/{quote(spec.owner, safe='')}/{quote(spec.name, safe='')}"


_env = Environment(
    loader=PackageLoader("daisi_async.server.web", "templates"),
    autoescape=select_autoescape(["html"], default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(when=when, short_json=short_json, duration=duration, pretty_json=pretty_json)
_env.globals.update(signature=signature)


def page(template: str, context: Mapping[str, Any], status: int = 200) -> HTMLResponse:
    """A rendered page, with the security headers every page gets."""
    html = _env.get_template(template).render(**context)
    return HTMLResponse(
        html,
        status_code=status,
        headers={
            "content-security-policy": CSP,
            "x-content-type-options": "nosniff",
            "referrer-policy": "same-origin",
            "cache-control": "no-store",
        },
    )
