"""The runtime's web page: server-rendered HTML (Jinja2), one script, one style sheet.

* :mod:`.pages` — the routes (``/``, ``/daisies/{name}``, ``/executions``,
  ``/executions/{id}``) and who is browsing;
* :mod:`.render` — templates, Markdown and view helpers;
* ``templates/`` and ``static/`` (``app.js``, ``style.css``) — shipped in the wheel.
"""

from .pages import COOKIE, routes

__all__ = ["COOKIE", "routes"]
