"""The pages' common frame: templates, the ``localtime`` filter and :func:`render`.

Every page extends ``base.html`` (nav, user and site, the "disconnected" banner) and
is rendered with :func:`render`, which adds what the frame needs: ``user``, ``site``,
``csrf`` and ``nav``. Jinja2 escapes everything rendered (autoescape is on for
``.html``), so an order whose shop is ``<script>...`` shows as text.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from web.auth import csrf_input, csrf_token

__all__ = ["NAV", "duration", "localtime", "make_templates", "render"]

HERE = Path(__file__).resolve().parent

#: The nav bar: (path, label).
NAV = (
    ("/", "Floor"),
    ("/orders", "Orders"),
    ("/exceptions", "Exceptions"),
    ("/tickets", "Tickets"),
    ("/benches", "Benches"),
    ("/equipment", "Equipment"),
    ("/reports", "Reports"),
)


def _moment(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, int | float):
        moment = dt.datetime.fromtimestamp(value, dt.UTC)
    elif isinstance(value, str) and value:
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)  # stored times are UTC
    return moment


def localtime(value: Any, zone: zoneinfo.ZoneInfo, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A stored (UTC) time — datetime, ISO text or epoch seconds — in the site's zone;
    ``—`` for none, the text itself when it is not a time."""
    moment = _moment(value)
    if moment is None:
        return "—" if value in (None, "") else str(value)
    return moment.astimezone(zone).strftime(fmt)


def duration(seconds: Any) -> str:
    """``42 s``, ``7 min``, ``3 h 05 min``, ``2 d 4 h``; ``—`` for none."""
    if not isinstance(seconds, int | float):
        return "—"
    s = int(abs(seconds))
    sign = "-" if seconds < 0 else ""
    if s < 60:
        return f"{sign}{s} s"
    if s < 3600:
        return f"{sign}{s // 60} min"
    if s < 86400:
        return f"{sign}{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{sign}{s // 86400} d {s % 86400 // 3600} h"


def make_templates(zone: zoneinfo.ZoneInfo) -> Jinja2Templates:
    """The templates of ``web/templates`` with the filters ``localtime`` (times in
    ``zone``), ``clock`` (the same, kept for older templates) and ``duration``."""
    templates = Jinja2Templates(directory=HERE / "templates")

    def local(value: Any, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
        return localtime(value, zone, fmt)

    templates.env.filters["localtime"] = local
    templates.env.filters["clock"] = local
    templates.env.filters["duration"] = duration
    templates.env.globals["csrf_input"] = csrf_input
    templates.env.globals["nav"] = NAV
    return templates


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    """Template ``name`` with ``context`` plus ``user``, ``site``, ``csrf``,
    ``timezone`` and ``path`` (for the nav), through ``app.state.templates``."""
    templates: Jinja2Templates = request.app.state.templates
    frame = {
        "user": getattr(request.state, "user", None),
        "site": request.app.state.site,
        "timezone": request.app.state.timezone,
        "csrf": csrf_token(request),
        "path": request.url.path,
    }
    frame.update(context or {})
    return templates.TemplateResponse(request, name, frame, status_code=status_code)
