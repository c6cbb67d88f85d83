"""Server-rendered pages: the Jinja2 environment over ``web/templates`` (shipped as package data), autoescaped,
with times shown in the site's zone (``[web] timezone``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from erpsync.runtime import views

_env = Environment(loader=PackageLoader("erpsync.web", "templates"), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)


def local_time(value: datetime | None, zone: str) -> str:
    """``2026-11-27 09:15:02 CST``; an empty string for None."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def duration(seconds: float | None) -> str:
    """``3 d 4 h``, ``2 h 5 min``, ``12 min``, ``40 s``; an em dash for None."""
    if seconds is None:
        return "—"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{secs} s"


_env.filters["duration"] = duration
_env.globals["settlement_of"] = views.settlement_of  # the settlement a dead letter is about, for its link


def page(request: Request, template: str, code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the request, the signed-in user, the CSRF token for forms and ``local``."""
    runtime = request.app.state.erpsync_runtime
    zone = runtime.settings.web.timezone
    state = request.scope.get("state", {})
    html = _env.get_template(template).render(
        request=request, user=state.get("user"), csrf_token=state.get("csrf_token", ""), zone=zone,
        local=lambda value: local_time(value, zone), demo=getattr(request.app.state, "erpsync_demo", None),
        **context)
    return HTMLResponse(html, status_code=code, headers={"Cache-Control": "no-store"})
