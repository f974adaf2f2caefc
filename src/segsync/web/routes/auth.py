"""Sign in, sign out, and the first-run page that creates the first administrator."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response

from segsync.errors import InputError, PermissionDenied
from segsync.services import users
from segsync.services.users import access
from segsync.web.deps import OptionalUser, RuntimeDep, SessionDep, page_router
from segsync.web.errors import TooManySignIns
from segsync.web.runtime import WebRuntime
from segsync.web.templating import flash, render

router = page_router()


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a path on this site (no ``//host`` or scheme): no open redirect after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def _needs_first_admin(runtime: WebRuntime) -> bool:
    if runtime.has_admin:
        return False
    needed = access.needs_first_admin(runtime.context(access.ANONYMOUS))
    runtime.has_admin = not needed
    return needed


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/")
def home(actor: OptionalUser) -> RedirectResponse:
    """The start page: Data > Exports once signed in."""
    if actor is None:
        return RedirectResponse("/sign-in", status_code=303)
    return RedirectResponse("/data/exports", status_code=303)


@router.get("/sign-in", response_model=None)
def sign_in_page(
    request: Request, runtime: RuntimeDep, actor: OptionalUser, next: str = "/"
) -> Response:
    if _needs_first_admin(runtime):
        return RedirectResponse("/first-run", status_code=303)
    if actor is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "auth/sign_in.html", {"next": safe_next(next), "email": ""})


@router.post("/sign-in", response_model=None)
def sign_in(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the password; too many failures for this email from this address → 429."""
    client = _client(request)
    anonymous = runtime.context(access.ANONYMOUS)
    wait = users.sign_in_wait(anonymous, email, client)
    if wait is not None:
        minutes = max(1, round(wait / 60))
        raise TooManySignIns(
            f"too many failed sign-ins for {email.strip()[:80]}; wait about {minutes} minute"
            f"{'s' if minutes != 1 else ''} and try again",
            retry_after=wait,
        )
    try:
        actor = users.authenticate(anonymous, email, password)
    except PermissionDenied as err:
        users.sign_in_failed(anonymous, email, client)
        context = {"next": safe_next(next), "email": email, "error": err.message}
        return render(request, "auth/sign_in.html", context, status_code=401)
    users.sign_in_succeeded(anonymous, email, client)
    token = users.start_session(anonymous, actor)
    session.sign_in(actor.user_id, actor.email, token, runtime.now())
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/sign-out")
def sign_out(request: Request, runtime: RuntimeDep, session: SessionDep) -> RedirectResponse:
    """End the server-side session: every copy of the cookie stops working."""
    if session.token is not None:
        users.end_session(runtime.context(access.ANONYMOUS), session.token)
    session.sign_out()
    flash(request, "You are signed out.", "success")
    return RedirectResponse("/sign-in", status_code=303)


@router.get("/first-run", response_model=None)
def first_run_page(request: Request, runtime: RuntimeDep) -> Response:
    if not _needs_first_admin(runtime):
        return RedirectResponse("/sign-in", status_code=303)
    return render(request, "auth/first_run.html", {"email": ""})


@router.post("/first-run", response_model=None)
def first_run(
    request: Request,
    runtime: RuntimeDep,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    password_again: Annotated[str, Form(max_length=1024)],
) -> Response:
    """Create the first administrator (only while none exists), then ask them to sign in."""
    if not _needs_first_admin(runtime):
        return RedirectResponse("/sign-in", status_code=303)
    try:
        if password != password_again:
            raise InputError("the two passwords differ; type the same password twice")
        user = access.create_first_admin(runtime.context(access.ANONYMOUS), email, password)
    except InputError as err:
        context = {"email": email, "error": err.message}
        return render(request, "auth/first_run.html", context, status_code=422)
    runtime.has_admin = True
    flash(request, f"Administrator {user.email} created. Sign in with it.", "success")
    return RedirectResponse("/sign-in", status_code=303)
