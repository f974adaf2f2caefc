"""Your account: your role, your password, and your API tokens (create shows the token once)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from segsync.errors import PermissionDenied
from segsync.services import users
from segsync.web.deps import ContextDep, ObjectId, SessionDep, page_router
from segsync.web.templating import flash, render

router = page_router(prefix="/account")


def _page(request: Request, ctx: ContextDep, **extra: object) -> HTMLResponse:
    tokens = users.list_tokens(ctx) if ctx.actor.user_id is not None else []
    return render(request, "account/account.html", {"tokens": tokens, **extra})


@router.get("")
def account_page(request: Request, ctx: ContextDep) -> HTMLResponse:
    return _page(request, ctx)


@router.post("/tokens")
def create_token(
    request: Request, ctx: ContextDep, name: Annotated[str, Form(max_length=200)]
) -> HTMLResponse:
    """Create a token and show it on this response only (it is stored hashed)."""
    created = users.create_token(ctx, name)
    return _page(request, ctx, created=created)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(request: Request, ctx: ContextDep, token_id: ObjectId) -> RedirectResponse:
    revoked = users.revoke_token(ctx, token_id)
    flash(request, f"API token {revoked.name!r} ({revoked.hint}) revoked.", "success")
    return RedirectResponse("/account", status_code=303)


@router.post("/password")
def change_password(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    current_password: Annotated[str, Form(max_length=1024)],
    new_password: Annotated[str, Form(max_length=1024)],
) -> RedirectResponse:
    """Change your own password (the current one is asked again)."""
    try:
        users.authenticate(ctx, ctx.actor.email, current_password)
    except PermissionDenied:
        raise PermissionDenied("the current password is wrong; nothing was changed") from None
    users.set_password(ctx, ctx.actor.email, new_password)  # ends every session of the user
    session.sign_in(
        ctx.actor.user_id, ctx.actor.email, users.start_session(ctx, ctx.actor), ctx.now()
    )
    flash(request, "Your password was changed; other browsers were signed out.", "success")
    return RedirectResponse("/account", status_code=303)
