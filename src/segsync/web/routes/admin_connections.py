"""Admin > Connections (C1–C8, R5, R6): list, add (any listed destination type), Connect, edit,
test, remove — and, when exports use the connection, remove or detach each of them.

The types, their form fields and their data-privacy statements come from the registry of
destination types (through ``services.connections``): no type is named here. Connections and
exports are addressed by id in URLs and in what is passed to the services. Keys never come back
in a page: a form that failed is shown again without the key.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field

from segsync.errors import Conflict, InputError, NotFound
from segsync.services import connections, exports
from segsync.services.connections import UNSET, ConnectionDetails, ConnectionEdit, NewConnection
from segsync.services.connections import probe as connection_probe
from segsync.services.context import ServiceContext
from segsync.services.users import access
from segsync.services.users.access import Action
from segsync.web.deps import ContextDep, ObjectId, page_router
from segsync.web.templating import flash, render

router = page_router(prefix="/admin/connections")

MAX_WHOLE = 1_000_000_000_000
_SHARE = {"administrators": False, "contributors": True}
TypeName = Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]


async def _posted_fields(request: Request) -> dict[str, str]:
    """Every text field of the posted form: a type's own settings are among them, by the names
    its capabilities declare (``region``), so no handler names them."""
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


PostedFields = Annotated[dict[str, str], Depends(_posted_fields)]


def _own_settings(
    kind: connections.ConnectionType, posted: dict[str, str], *, base_url: str | None = None
) -> dict[str, str]:
    """The type's own settings the form filled in; on an edit (``base_url``: the current one) a
    preset still matching the connection is left out, so saving changes nothing."""
    chosen: dict[str, str] = {}
    for setting in kind.own_settings():
        value = posted.get(setting.name, "").strip()
        if value and not (base_url is not None and setting.value_of(value) == base_url):
            chosen[setting.name] = value
    return chosen


def _admin(ctx: ServiceContext) -> None:
    access.require(ctx.actor, Action.MANAGE_CONNECTIONS)


def _details(ctx: ServiceContext, connection_id: ObjectId) -> ConnectionDetails:
    """The connection with ``connection_id`` as administrators see it (with its consent)."""
    _admin(ctx)
    found = connections.show_connection(ctx, connection_id)
    assert isinstance(found, ConnectionDetails)
    return found


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
    return render(request, "admin/connection_types.html", {"types": connections.connection_types()})


def _known_type(type_name: str) -> connections.ConnectionType:
    """The registered type in the URL; an unknown one is a page that does not exist (404)."""
    try:
        return connections.connection_type(type_name)
    except InputError as err:
        raise NotFound(err.message) from None


def _form_page(
    request: Request,
    ctx: ServiceContext,
    type_name: str,
    values: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    kind = _known_type(type_name)
    context = {
        "values": values,
        "type_name": kind.name,
        "type_display": kind.display_name,
        "settings": kind.settings,
        "consent": kind.consent_statement,
    }
    return render(request, "admin/connection_form.html", context, status_code=status_code)


@router.get("/add/{type_name}")
def add_page(request: Request, ctx: ContextDep, type_name: TypeName) -> HTMLResponse:
    """The Add connection form of one destination type, drawn from its declared settings."""
    _admin(ctx)
    return _form_page(request, ctx, type_name, {"share": "administrators", "add_me": True})


@router.post("/add/{type_name}", response_model=None)
def add(
    request: Request,
    ctx: ContextDep,
    type_name: TypeName,
    name: Annotated[str, Form(max_length=200)] = "",
    share: Annotated[str, Form()] = "administrators",
    api_key: Annotated[str, Form(max_length=4096)] = "",
    secret_ref: Annotated[str, Form(max_length=4096)] = "",
    base_url: Annotated[str, Form(max_length=2000)] = "",
    rate_limit: Annotated[str, Form(max_length=40)] = "",
    contract_limit: Annotated[str, Form(max_length=40)] = "",
    agree: Annotated[bool, Form()] = False,
    add_me: Annotated[bool, Form()] = False,
    posted: PostedFields = None,  # type: ignore[assignment]  # filled in by Depends
) -> HTMLResponse | RedirectResponse:
    """Save: checks the key (Connect) again, so it works without JavaScript too."""
    _admin(ctx)
    kind = _known_type(type_name)  # an unknown type is refused before anything else
    own = _own_settings(kind, posted)
    # Everything but the key goes back into the form if it has to be shown again.
    values = {
        "name": name,
        "share": share,
        "secret_ref": secret_ref,
        "base_url": base_url,
        "rate_limit": rate_limit,
        "contract_limit": contract_limit,
        "add_me": add_me,
        **own,
    }
    try:
        if share not in _SHARE:
            raise InputError("choose who can use this connection: administrators or contributors")
        new = NewConnection(
            name,
            type=type_name,
            api_key=api_key or None,
            secret_ref=secret_ref or None,
            base_url=base_url.strip() or None,
            rate_limit=_float(rate_limit, "rate limit"),
            contract_limit=_int(contract_limit, "contract limit"),
            share_with_contributors=_SHARE[share],
            export_user_email=ctx.actor.email if add_me else None,
            settings=own,
        )
        created = connections.add_connection(ctx, new, agree=agree)
    except InputError as err:
        values["error"] = err.message
        return _form_page(request, ctx, type_name, values, status_code=422)
    flash(request, f"Connection {created.name!r} saved: {created.health_message}", "success")
    return RedirectResponse("/admin/connections", status_code=303)


class CheckRequest(BaseModel):
    type: str | None = Field(default=None, max_length=40)
    api_key: str | None = Field(default=None, max_length=4096)
    secret_ref: str | None = Field(default=None, max_length=4096)
    base_url: str | None = Field(default=None, max_length=2000)
    rate_limit: str | None = Field(default=None, max_length=40)
    settings: dict[str, Annotated[str, Field(max_length=200)]] = Field(
        default_factory=dict, max_length=20
    )


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
            settings={key: value for key, value in body.settings.items() if value.strip()},
        )
    except InputError as err:
        refusal = {"ok": False, "health": "invalid_input", "message": err.message}
        return JSONResponse(refusal, status_code=422)
    return JSONResponse({"ok": outcome.ok, "health": outcome.health, "message": outcome.message})


@router.get("/{connection_id}")
def details_page(request: Request, ctx: ContextDep, connection_id: ObjectId) -> HTMLResponse:
    details = _details(ctx, connection_id)
    return render(request, "admin/connection_details.html", {"c": details})


def _edit_page(
    request: Request, details: ConnectionDetails, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    kind = connections.connection_type(details.type)
    context = {
        "c": details,
        "settings": kind.settings,
        "consent": kind.consent_statement,
        "error": error,
    }
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
    posted: PostedFields = None,  # type: ignore[assignment]  # filled in by Depends
) -> HTMLResponse | RedirectResponse:
    """Change what differs; a new key or base URL is checked again and needs the agreement."""
    details = _details(ctx, connection_id)
    kind = connections.connection_type(details.type)
    try:
        if share not in _SHARE:
            raise InputError("choose who can use this connection: administrators or contributors")
        rate = _float(rate_limit, "rate limit")
        limit = _int(contract_limit, "contract limit")
        edit = ConnectionEdit(
            name=name if name.strip() and name.strip() != details.name else UNSET,
            api_key=api_key or UNSET,
            secret_ref=secret_ref or UNSET,
            base_url=base_url if base_url.strip() and base_url != details.base_url else UNSET,
            rate_limit=rate if rate is not None and rate != details.rate_limit else UNSET,
            contract_limit=(
                limit if limit is not None and limit != details.contract_limit else UNSET
            ),
            share_with_contributors=_SHARE[share],
            export_user_email=ctx.actor.email if add_me else UNSET,
            settings=_own_settings(kind, posted, base_url=details.base_url),
        )
        changed = connections.edit_connection(ctx, connection_id, edit, agree=agree)
    except InputError as err:
        return _edit_page(request, details, err.message, status_code=422)
    flash(request, f"Connection {changed.name!r} saved.", "success")
    return RedirectResponse(f"/admin/connections/{connection_id}", status_code=303)


@router.post("/{connection_id}/test")
def test(request: Request, ctx: ContextDep, connection_id: ObjectId) -> RedirectResponse:
    """Connect again with the saved key; the outcome becomes the connection's health."""
    details = _details(ctx, connection_id)
    result = connections.test_connection(ctx, connection_id)
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
        connections.remove_connection(ctx, connection_id)
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
    export_id: Annotated[int, Form(ge=1, le=2**63 - 1)],
) -> RedirectResponse:
    """Remove one export that uses the connection (its run history stays)."""
    _details(ctx, connection_id)
    removed = exports.remove_export(ctx, export_id)
    flash(request, f"Export {removed.export.name!r} removed.", "success")
    return RedirectResponse(f"/admin/connections/{connection_id}/remove", status_code=303)


@router.post("/{connection_id}/exports/detach")
def detach_export(
    request: Request,
    ctx: ContextDep,
    connection_id: ObjectId,
    export_id: Annotated[int, Form(ge=1, le=2**63 - 1)],
) -> RedirectResponse:
    """Detach one export: it keeps its settings, shows "No connection" and never runs."""
    _details(ctx, connection_id)
    detached = exports.detach_export(ctx, export_id)
    name = detached.export.name
    flash(request, f"Export {name!r} detached: it shows “No connection” now.", "success")
    return RedirectResponse(f"/admin/connections/{connection_id}/remove", status_code=303)
