"""Admin > Connections (C1–C8, R5, R6): list, add (Autopilot), Connect, edit, test, remove —
and, when exports use the connection, remove or detach each of them.

Connections are addressed by id in URLs (names may hold any character); the services take
names. Keys never come back in a page: a form that failed is shown again without the key.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field

from segsync.errors import Conflict, InputError, NotFound
from segsync.services import connections, exports
from segsync.services.connections import CONSENT_STATEMENT, ConnectionDetails
from segsync.services.connections import probe as connection_probe
from segsync.services.context import ServiceContext
from segsync.services.users import access
from segsync.services.users.access import Action
from segsync.web.deps import ContextDep, ObjectId, page_router
from segsync.web.templating import flash, render

router = page_router(prefix="/admin/connections")

TYPES = (("autopilot", "Autopilot", "Email marketing automation: contacts and lists."),)
MAX_WHOLE = 1_000_000_000_000
_SHARE = {"administrators": False, "contributors": True}


def _admin(ctx: ServiceContext) -> None:
    access.require(ctx.actor, Action.MANAGE_CONNECTIONS)


def _details(ctx: ServiceContext, connection_id: ObjectId) -> ConnectionDetails:
    """The connection with ``connection_id`` as administrators see it (with its consent)."""
    _admin(ctx)
    for row in connections.list_connections(ctx):
        if row.id == connection_id:
            found = connections.show_connection(ctx, row.name)
            assert isinstance(found, ConnectionDetails)
            return found
    raise NotFound(f"there is no connection with id {connection_id}")


def _float(value: str, field: str) -> float | None:
    text = value.strip().replace(",", "")
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise InputError(f"{field}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise InputError(f"{field}: {value!r} is not a finite number")
    return number


def _int(value: str, field: str) -> int | None:
    number = _float(value, field)
    if number is None:
        return None
    if number != int(number) or not 0 <= number <= MAX_WHOLE:
        raise InputError(f"{field}: {value!r} is not a whole number from 0 to {MAX_WHOLE:,}")
    return int(number)


@router.get("")
def list_page(request: Request, ctx: ContextDep) -> HTMLResponse:
    _admin(ctx)
    rows = connections.list_connections(ctx)
    return render(request, "admin/connections.html", {"connections": rows})


@router.get("/add")
def choose_type_page(request: Request, ctx: ContextDep) -> HTMLResponse:
    _admin(ctx)
    return render(request, "admin/connection_types.html", {"types": TYPES})


def _form_page(
    request: Request, ctx: ServiceContext, values: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    context = {
        "values": values,
        "consent": CONSENT_STATEMENT,
        "default_base_url": connection_probe.default_base_url("autopilot"),
        "type_display": "Autopilot",
    }
    return render(request, "admin/connection_form.html", context, status_code=status_code)


@router.get("/add/autopilot")
def add_page(request: Request, ctx: ContextDep) -> HTMLResponse:
    _admin(ctx)
    return _form_page(request, ctx, {"share": "administrators", "add_me": True})


@router.post("/add/autopilot", response_model=None)
def add(
    request: Request,
    ctx: ContextDep,
    name: Annotated[str, Form(max_length=200)] = "",
    share: Annotated[str, Form()] = "administrators",
    api_key: Annotated[str, Form(max_length=4096)] = "",
    secret_ref: Annotated[str, Form(max_length=4096)] = "",
    base_url: Annotated[str, Form(max_length=2000)] = "",
    rate_limit: Annotated[str, Form(max_length=40)] = "",
    contract_limit: Annotated[str, Form(max_length=40)] = "",
    agree: Annotated[bool, Form()] = False,
    add_me: Annotated[bool, Form()] = False,
) -> HTMLResponse | RedirectResponse:
    """Save: checks the key (Connect) again, so it works without JavaScript too."""
    _admin(ctx)
    # Everything but the key goes back into the form if it has to be shown again.
    values = {
        "name": name,
        "share": share,
        "secret_ref": secret_ref,
        "base_url": base_url,
        "rate_limit": rate_limit,
        "contract_limit": contract_limit,
        "add_me": add_me,
    }
    try:
        if share not in _SHARE:
            raise InputError("choose who can use this connection: administrators or contributors")
        created = connections.add_connection(
            ctx,
            "autopilot",
            name,
            api_key=api_key or None,
            secret_ref=secret_ref or None,
            base_url=base_url.strip() or None,
            rate_limit=_float(rate_limit, "rate limit"),
            contract_limit=_int(contract_limit, "contract limit"),
            share_with_contributors=_SHARE[share],
            agree=agree,
            export_user_email=ctx.actor.email if add_me else None,
        )
    except InputError as err:
        return _form_page(request, ctx, {**values, "error": err.message}, status_code=422)
    flash(request, f"Connection {created.name!r} saved: {created.health_message}", "success")
    return RedirectResponse("/admin/connections", status_code=303)


class CheckRequest(BaseModel):
    type: str = "autopilot"
    api_key: str | None = Field(default=None, max_length=4096)
    secret_ref: str | None = Field(default=None, max_length=4096)
    base_url: str | None = Field(default=None, max_length=2000)
    rate_limit: str | None = Field(default=None, max_length=40)


@router.post("/check")
def check(ctx: ContextDep, body: CheckRequest) -> JSONResponse:
    """Connect: check the key in place, save nothing (the form's JavaScript calls this)."""
    try:
        outcome = connection_probe.probe_connection(
            ctx,
            body.type,
            api_key=body.api_key,
            secret_ref=body.secret_ref,
            base_url=body.base_url,
            rate_limit=_float(body.rate_limit or "", "rate limit"),
        )
    except InputError as err:
        return JSONResponse({"ok": False, "health": "invalid_input", "message": err.message})
    return JSONResponse({"ok": outcome.ok, "health": outcome.health, "message": outcome.message})


@router.get("/{connection_id}")
def details_page(request: Request, ctx: ContextDep, connection_id: ObjectId) -> HTMLResponse:
    details = _details(ctx, connection_id)
    return render(request, "admin/connection_details.html", {"c": details})


def _edit_page(
    request: Request, details: ConnectionDetails, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    context = {"c": details, "consent": CONSENT_STATEMENT, "error": error}
    return render(request, "admin/connection_edit.html", context, status_code=status_code)


@router.get("/{connection_id}/edit")
def edit_page(request: Request, ctx: ContextDep, connection_id: ObjectId) -> HTMLResponse:
    return _edit_page(request, _details(ctx, connection_id))


@router.post("/{connection_id}/edit", response_model=None)
def edit(
    request: Request,
    ctx: ContextDep,
    connection_id: ObjectId,
    name: Annotated[str, Form(max_length=200)] = "",
    share: Annotated[str, Form()] = "administrators",
    api_key: Annotated[str, Form(max_length=4096)] = "",
    secret_ref: Annotated[str, Form(max_length=4096)] = "",
    base_url: Annotated[str, Form(max_length=2000)] = "",
    rate_limit: Annotated[str, Form(max_length=40)] = "",
    contract_limit: Annotated[str, Form(max_length=40)] = "",
    agree: Annotated[bool, Form()] = False,
    add_me: Annotated[bool, Form()] = False,
) -> HTMLResponse | RedirectResponse:
    """Change what differs; a new key or base URL is checked again and needs the agreement."""
    details = _details(ctx, connection_id)
    try:
        if share not in _SHARE:
            raise InputError("choose who can use this connection: administrators or contributors")
        rate = _float(rate_limit, "rate limit")
        limit = _int(contract_limit, "contract limit")
        changed = connections.edit_connection(
            ctx,
            details.name,
            new_name=name if name.strip() and name.strip() != details.name else None,
            api_key=api_key or None,
            secret_ref=secret_ref or None,
            base_url=base_url if base_url.strip() and base_url != details.base_url else None,
            rate_limit=rate if rate is not None and rate != details.rate_limit else None,
            contract_limit=(
                limit if limit is not None and limit != details.contract_limit else None
            ),
            share_with_contributors=_SHARE[share],
            export_user_email=ctx.actor.email if add_me else None,
            agree=agree,
        )
    except InputError as err:
        return _edit_page(request, details, err.message, status_code=422)
    flash(request, f"Connection {changed.name!r} saved.", "success")
    return RedirectResponse(f"/admin/connections/{connection_id}", status_code=303)


@router.post("/{connection_id}/test")
def test(request: Request, ctx: ContextDep, connection_id: ObjectId) -> RedirectResponse:
    """Connect again with the saved key; the outcome becomes the connection's health."""
    details = _details(ctx, connection_id)
    result = connections.test_connection(ctx, details.name)
    flash(request, f"{details.name}: {result.message}", "success" if result.ok else "error")
    return RedirectResponse(f"/admin/connections/{connection_id}", status_code=303)


@router.get("/{connection_id}/remove")
def remove_page(request: Request, ctx: ContextDep, connection_id: ObjectId) -> HTMLResponse:
    """Confirm the removal, or — while exports use it — offer Remove or Detach for each."""
    details = _details(ctx, connection_id)
    return render(request, "admin/connection_remove.html", {"c": details})


@router.post("/{connection_id}/remove", response_model=None)
def remove(
    request: Request, ctx: ContextDep, connection_id: ObjectId
) -> HTMLResponse | RedirectResponse:
    details = _details(ctx, connection_id)
    try:
        connections.remove_connection(ctx, details.name)
    except Conflict as err:
        flash(request, err.message, "error")
        return RedirectResponse(f"/admin/connections/{connection_id}/remove", status_code=303)
    flash(request, f"Connection {details.name!r} removed.", "success")
    return RedirectResponse("/admin/connections", status_code=303)


@router.post("/{connection_id}/exports/remove")
def remove_export(
    request: Request,
    ctx: ContextDep,
    connection_id: ObjectId,
    export: Annotated[str, Form(max_length=400)],
) -> RedirectResponse:
    """Remove one export that uses the connection (its run history stays)."""
    _details(ctx, connection_id)
    exports.remove_export(ctx, export)
    flash(request, f"Export {export!r} removed.", "success")
    return RedirectResponse(f"/admin/connections/{connection_id}/remove", status_code=303)


@router.post("/{connection_id}/exports/detach")
def detach_export(
    request: Request,
    ctx: ContextDep,
    connection_id: ObjectId,
    export: Annotated[str, Form(max_length=400)],
) -> RedirectResponse:
    """Detach one export: it keeps its settings, shows "No connection" and never runs."""
    _details(ctx, connection_id)
    exports.detach_export(ctx, export)
    flash(request, f"Export {export!r} detached: it shows “No connection” now.", "success")
    return RedirectResponse(f"/admin/connections/{connection_id}/remove", status_code=303)
