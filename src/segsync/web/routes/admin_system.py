"""Admin > System (T1, T3, T4): the status of every data source, segment and export, recent
runs, the system schedule, and the notifications of failed exports. Administrators only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from segsync.errors import InputError, SegsyncError
from segsync.services import access, exports, notifications, profiles, runs, segments
from segsync.services.access import Action
from segsync.services.context import ServiceContext
from segsync.web.deps import ContextDep, page_router
from segsync.web.templating import flash, render

router = page_router(prefix="/admin")

RECENT_RUNS = 20


def _data_sources(ctx: ServiceContext) -> tuple[list[Any], str | None]:
    """The imported tables, or why they cannot be read now (the page shows the rest anyway)."""
    try:
        return list(profiles.schema(ctx).tables), None
    except SegsyncError as err:
        return [], err.message


@router.get("/system")
def system_page(request: Request, ctx: ContextDep) -> HTMLResponse:
    access.require(ctx.actor, Action.MANAGE_SCHEDULE)
    sources, sources_error = _data_sources(ctx)
    context = {
        "sources": sources,
        "sources_error": sources_error,
        "segments": segments.list_segments(ctx),
        "exports": exports.list_exports(ctx),
        "runs": runs.list_runs(ctx, limit=RECENT_RUNS),
    }
    return render(request, "admin/system.html", context)


@router.get("/notifications")
def notifications_page(request: Request, ctx: ContextDep) -> HTMLResponse:
    items = notifications.list_notifications(ctx, limit=200)
    return render(request, "admin/notifications.html", {"items": items})


@router.post("/notifications/read")
def mark_read(
    request: Request, ctx: ContextDep, notification: Annotated[str, Form(max_length=20)] = "all"
) -> RedirectResponse:
    """Mark one notification (its id) or ``all`` as read."""
    if notification == "all":
        changed = notifications.mark_read(ctx, "all")
    elif notification.isdigit():
        changed = notifications.mark_read(ctx, [int(notification)])
    else:
        raise InputError(f"notification: {notification!r} is neither an id nor 'all'")
    flash(request, f"{changed} notification{'s' if changed != 1 else ''} marked read.", "success")
    return RedirectResponse("/admin/notifications", status_code=303)
