"""Data > Explain a person (docs/explain.md): a search box for an email (and, optionally, one
export), then what segsync knows of that person — the profiles carrying the email and how it
was cleaned, each segment they are in or the first condition that kept them out, the lists the
sync state has them on, the runs that touched them, and whether they were forgotten. Anyone
signed in may ask (the service checks)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from segsync.errors import InputError
from segsync.services import people
from segsync.web.deps import ContextDep, page_router
from segsync.web.templating import render

router = page_router(prefix="/data/explain")


@router.get("")
def explain_page(
    request: Request,
    ctx: ContextDep,
    email: Annotated[str, Query(max_length=320)] = "",
    export: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    report, error, status = None, None, 200
    if email.strip():
        try:
            report = people.explain_person(ctx, email, export=export or None)
        except InputError as err:
            error, status = err.message, 422
    context = {
        "email": email,
        "export": export,
        "exports": people.export_choices(ctx),
        "report": report,
        "error": error,
    }
    return render(request, "data/explain.html", context, status_code=status)
