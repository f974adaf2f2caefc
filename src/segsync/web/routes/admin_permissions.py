"""Admin > Permissions (R1): users and their roles — add (with an initial password), change
the role, remove. Administrators only: the services refuse everyone else (403)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from segsync.errors import InputError
from segsync.services import users
from segsync.services.context import ServiceContext
from segsync.web.deps import ContextDep, page_router
from segsync.web.templating import flash, render

router = page_router(prefix="/admin/permissions")

ROLES = (
    ("viewer", "Viewer", "Sees segments, exports and run history; changes nothing."),
    (
        "contributor",
        "Contributor",
        "Creates segments; creates, edits, runs and removes exports on connections shared "
        "with contributors.",
    ),
    (
        "administrator",
        "Administrator",
        "Everything: users and roles, connections, the system schedule.",
    ),
)


def _page(
    request: Request,
    ctx: ServiceContext,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "users": users.list_users(ctx),
        "roles": ROLES,
        "error": error,
        "form": form or {"email": "", "role": "viewer"},
    }
    return render(request, "admin/permissions.html", context, status_code=status_code)


@router.get("")
def permissions_page(request: Request, ctx: ContextDep) -> HTMLResponse:
    return _page(request, ctx)


@router.post("/users", response_model=None)
def add_user(
    request: Request,
    ctx: ContextDep,
    email: Annotated[str, Form(max_length=320)],
    role: Annotated[str, Form(max_length=40)],
    password: Annotated[str, Form(max_length=1024)],
) -> HTMLResponse | RedirectResponse:
    try:
        user = users.add_user(ctx, email, role, password)
    except InputError as err:
        form = {"email": email, "role": role}
        return _page(request, ctx, error=err.message, form=form, status_code=422)
    flash(request, f"Added {user.email} as {user.role.value}.", "success")
    return RedirectResponse("/admin/permissions", status_code=303)


@router.post("/users/role")
def set_role(
    request: Request,
    ctx: ContextDep,
    email: Annotated[str, Form(max_length=320)],
    role: Annotated[str, Form(max_length=40)],
) -> RedirectResponse:
    try:
        user = users.set_role(ctx, email, role)
    except InputError as err:
        flash(request, err.message, "error")
    else:
        flash(request, f"{user.email} is now {user.role.value}.", "success")
    return RedirectResponse("/admin/permissions", status_code=303)


@router.post("/users/remove")
def remove_user(
    request: Request, ctx: ContextDep, email: Annotated[str, Form(max_length=320)]
) -> RedirectResponse:
    try:
        users.remove_user(ctx, email)
    except InputError as err:
        flash(request, err.message, "error")
    else:
        removed = email.strip().lower()
        flash(request, f"Removed {removed}; their API tokens were revoked.", "success")
    return RedirectResponse("/admin/permissions", status_code=303)
