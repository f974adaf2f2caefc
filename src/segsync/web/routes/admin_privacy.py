"""Admin > Privacy (P4): forget a person by email — deleted from every Autopilot connection
they were exported to and from the sync state, and never exported again until lifted — the
list of erasures (pending, done, suppressed; emails masked, or only a digest once done), Retry
pending, and Lift a suppression. Administrators only (the erasure service refuses the others).

No page ever shows an email in clear: the report and the list use the masked form, and the
form is not filled in again after a forget."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from segsync.errors import InputError
from segsync.services.context import ServiceContext
from segsync.services.privacy import erasure
from segsync.web.deps import ContextDep, page_router
from segsync.web.templating import flash, render

router = page_router(prefix="/admin/privacy")

PAGE = "/admin/privacy"
Email = Annotated[str, Form(max_length=320)]


def _rows(ctx: ServiceContext) -> list[dict[str, Any]]:
    rows = []
    for record in erasure.list_erasures(ctx):
        view = erasure.erasure_view(record)
        view["requested_at"] = record.requested_at
        view["done_at"] = record.done_at
        rows.append(view)
    return rows


def _page(
    request: Request,
    ctx: ServiceContext,
    *,
    report: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows = _rows(ctx)
    context = {
        "rows": rows,
        "pending": sum(1 for row in rows if row["status"] == "pending"),
        "report": report,
        "error": error,
    }
    return render(request, "admin/privacy.html", context, status_code=status_code)


@router.get("")
def privacy_page(request: Request, ctx: ContextDep) -> HTMLResponse:
    return _page(request, ctx)


@router.post("/forget")
def forget(request: Request, ctx: ContextDep, email: Email = "") -> HTMLResponse:
    """Forget the person now and show the report (connections, done or pending)."""
    try:
        report = erasure.forget(ctx, email)
    except InputError as err:
        return _page(request, ctx, error=err.message, status_code=422)
    return _page(request, ctx, report=report.to_dict())


@router.post("/retry")
def retry(request: Request, ctx: ContextDep) -> RedirectResponse:
    done = erasure.retry_pending_erasures(ctx)
    left = len(erasure.list_erasures(ctx, status="pending"))
    level = "info" if left else "success"
    flash(request, f"{done} erasure(s) done now; {left} still pending.", level)
    return RedirectResponse(PAGE, status_code=303)


@router.post("/lift", response_model=None)
def lift(request: Request, ctx: ContextDep, email: Email = "") -> HTMLResponse | RedirectResponse:
    """Let a forgotten person be exported again (they came back and agreed)."""
    try:
        lifted = erasure.lift_suppression(ctx, email)
    except InputError as err:
        return _page(request, ctx, error=err.message, status_code=422)
    if lifted:
        flash(request, "Suppression lifted: later runs may export this person again.", "success")
    else:
        flash(request, "This person was not suppressed; nothing changed.", "info")
    return RedirectResponse(PAGE, status_code=303)
