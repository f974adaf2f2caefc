"""Rendering pages: one Jinja2 environment (autoescape on; never ``|safe`` on user data) and
:func:`render`, which gives every template what the layout needs.

Every template gets, besides its own values:

* ``actor`` — the signed-in :class:`Actor` or ``None``;
* ``csrf_token`` — put ``{% include "_partials/csrf.html" %}`` in every ``<form method="post">``;
* ``flashes`` — the messages queued with :func:`flash` (shown by the layout, once);
* ``can(action, target=None)`` — whether the actor may do it (hide what they cannot use);
* ``notifications`` — unread notices of failed exports, for administrators;
* ``path`` — the request path (the navigation marks the current section).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, cast

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from segsync.errors import SegsyncError
from segsync.services import notifications
from segsync.services.users.access import Action, Actor, Role, Target, can
from segsync.web.runtime import WebRuntime
from segsync.web.security import WebSession

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def _when(moment: datetime | None, empty: str = "—") -> str:
    """A timestamp as people read it: ``2025-06-30 12:00 UTC``."""
    if moment is None:
        return empty
    return moment.strftime("%Y-%m-%d %H:%M") + (f" {moment.tzname()}" if moment.tzinfo else " UTC")


def _number(value: int | float | None, empty: str = "—") -> str:
    if value is None:
        return empty
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def build_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    env.autoescape = True
    env.filters["when"] = _when
    env.filters["number"] = _number
    env.globals["Action"] = Action
    return templates


def _session(request: Request) -> WebSession:
    session = getattr(request.state, "session", None)
    return session if isinstance(session, WebSession) else WebSession()


def flash(request: Request, text: str, level: str = "info") -> None:
    """Queue a message for the next page (``info``, ``success`` or ``error``)."""
    _session(request).flash(text, level)


def _notifications(request: Request, actor: Actor | None) -> list[Any]:
    if actor is None or actor.role is not Role.ADMINISTRATOR:
        return []
    runtime = cast(WebRuntime, request.app.state.runtime)
    try:
        return list(
            notifications.list_notifications(runtime.context(actor), unread_only=True, limit=5)
        )
    except SegsyncError:
        return []


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` with ``context`` and the layout's values (see the module doc)."""
    actor = cast("Actor | None", getattr(request.state, "actor", None))
    session = _session(request)

    def may(action: Action | str, target: Target = None) -> bool:
        return can(actor, action, target)

    values: dict[str, Any] = {
        "actor": actor,
        "csrf_token": session.csrf_token,
        "flashes": session.pop_flashes(),
        "can": may,
        "notifications": _notifications(request, actor),
        "path": request.url.path,
        **(context or {}),
    }
    templates = cast(Jinja2Templates, request.app.state.templates)
    return templates.TemplateResponse(
        request, template, values, status_code=status_code, headers=headers
    )
