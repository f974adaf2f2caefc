"""Admin > System (T1, T3, T4): the system refresh schedule, the status of every data source
and segment, the exports summarised (counts by latest status, the failing ones; the full list,
paged and sortable by status, is Data > Exports), recent runs, and the notifications of failed
exports. Administrators only (the schedule and notification services refuse everyone else)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from segsync.errors import InputError
from segsync.services import notifications, runs
from segsync.services.context import ServiceContext
from segsync.services.runs import schedule
from segsync.services.system import status
from segsync.web.deps import MAX_ID, ContextDep, page_router
from segsync.web.templating import flash, render

router = page_router(prefix="/admin")

RECENT_RUNS = 20
ATTENTION_ROWS = 20
WEEKDAYS = (
    ("mon", "Monday"),
    ("tue", "Tuesday"),
    ("wed", "Wednesday"),
    ("thu", "Thursday"),
    ("fri", "Friday"),
    ("sat", "Saturday"),
    ("sun", "Sunday"),
)
MAX_TIMES = 4


def _page(
    request: Request, ctx: ServiceContext, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    view = schedule.show_schedule(ctx)
    saved = view.schedule
    times = [moment.strftime("%H:%M") for moment in saved.times]
    report = status.status_summary(ctx, limit=ATTENTION_ROWS)
    context = {
        "view": view,
        "form": {
            "enabled": saved.enabled,
            "frequency": saved.frequency.value,
            "weekdays": {day.value for day in saved.weekdays},
            "times": times + [""] * (MAX_TIMES - len(times)),
            "tz": saved.tz,
        },
        "weekday_names": WEEKDAYS,
        "error": error,
        "report": report,
        "sources": report.sources,
        "segments": report.segments,
        "attention": report.attention,
        "runs": runs.list_runs(ctx, limit=RECENT_RUNS),
    }
    return render(request, "admin/system.html", context, status_code=status_code)


@router.get("/system")
def system_page(request: Request, ctx: ContextDep) -> HTMLResponse:
    return _page(request, ctx)


@router.post("/system/schedule", response_model=None)
def save_schedule(
    request: Request,
    ctx: ContextDep,
    enabled: Annotated[str, Form(max_length=10)] = "off",
    frequency: Annotated[str, Form(max_length=10)] = "daily",
    weekdays: Annotated[list[str] | None, Form(max_length=10)] = None,
    times: Annotated[list[str] | None, Form(max_length=10)] = None,
    tz: Annotated[str, Form(max_length=100)] = "UTC",
) -> HTMLResponse | RedirectResponse:
    """Off, or On: daily or weekly on the chosen weekdays, up to four times, in a time zone."""
    try:
        if enabled == "off":
            view = schedule.schedule_off(ctx)
        else:
            chosen = schedule.schedule_from_options(
                daily=frequency != "weekly",
                weekly=",".join(weekdays or []) if frequency == "weekly" else None,
                times=",".join(t for t in (times or []) if t.strip()),
                tz=tz.strip(),
            )
            view = schedule.set_schedule(ctx, chosen)
    except InputError as err:
        return _page(request, ctx, error=err.message, status_code=422)
    flash(request, f"System schedule saved: {view.description}.", "success")
    return RedirectResponse("/admin/system", status_code=303)


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
    elif notification.isascii() and notification.isdigit() and int(notification) <= MAX_ID:
        changed = notifications.mark_read(ctx, [int(notification)])
    else:
        raise InputError(f"notification: {notification!r} is neither an id nor 'all'")
    flash(request, f"{changed} notification{'s' if changed != 1 else ''} marked read.", "success")
    return RedirectResponse("/admin/notifications", status_code=303)
