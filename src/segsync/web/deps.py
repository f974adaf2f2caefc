"""Dependencies every route uses, as ``Annotated`` aliases, so handlers read like prose::

    router = page_router()          # pages: HTML, session cookie, CSRF checked on non-GET

    @router.get("/admin/connections")
    def connections_page(request: Request, ctx: ContextDep) -> Response:
        rows = connections.list_connections(ctx)      # the service checks the policy
        return render(request, "admin/connections.html", {"connections": rows})

    router = api_router("/connections", tags=["connections"])   # JSON under /api/v1

    @router.get("")
    def list_connections(ctx: ApiContextDep) -> list[dict[str, Any]]: ...

Pages: :data:`CurrentUser` (the signed-in :class:`Actor`; anonymous requests are redirected to
the sign-in page), :data:`OptionalUser`, :data:`ContextDep` (a per-request ``ServiceContext``
acting as the signed-in user), :data:`SessionDep`, :data:`RuntimeDep`.
API: :data:`ApiUser` (bearer token; 401 without a valid one), :data:`ApiContextDep`.
Page handlers and dependencies are plain ``def``: services are synchronous and run in the
thread pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from segsync.errors import PermissionDenied
from segsync.services import users
from segsync.services.context import ServiceContext
from segsync.services.users.access import ANONYMOUS, Actor
from segsync.web.errors import CsrfRefused, SignInRequired, Unauthenticated
from segsync.web.runtime import WebRuntime
from segsync.web.security import WebSession

API_PREFIX = "/api/v1"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_ID = 2**63 - 1

ObjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="The object's numeric id.")]
"""A numeric id in a URL path: ids beyond the DB's 64-bit integers are refused with 422."""

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def get_runtime(request: Request) -> WebRuntime:
    return cast(WebRuntime, request.app.state.runtime)


RuntimeDep = Annotated[WebRuntime, Depends(get_runtime)]


def get_session(request: Request) -> WebSession:
    """The page session (set by :class:`segsync.web.security.SecurityMiddleware`)."""
    session = getattr(request.state, "session", None)
    if session is None:  # an /api/ path: no cookie session there
        session = WebSession()
        request.state.session = session
    return cast(WebSession, session)


SessionDep = Annotated[WebSession, Depends(get_session)]


def optional_user(request: Request, runtime: RuntimeDep, session: SessionDep) -> Actor | None:
    """The signed-in user with their current role, or ``None``. Also kept on
    ``request.state.actor`` for the templates."""
    if hasattr(request.state, "actor"):
        return cast("Actor | None", request.state.actor)
    actor = None
    if session.token is not None:
        actor = users.session_actor(runtime.context(ANONYMOUS), session.token)
        if actor is None or actor.user_id != session.user_id:  # ended, expired or removed
            actor = None
            session.sign_out()
    elif session.email is not None:  # a cookie from before server-side sessions
        session.sign_out()
    request.state.actor = actor
    return actor


OptionalUser = Annotated[Actor | None, Depends(optional_user)]


def current_user(actor: OptionalUser) -> Actor:
    """The signed-in user; anonymous page requests go to the sign-in page."""
    if actor is None:
        raise SignInRequired
    return actor


CurrentUser = Annotated[Actor, Depends(current_user)]


def page_context(runtime: RuntimeDep, actor: CurrentUser) -> Iterator[ServiceContext]:
    """A ``ServiceContext`` acting as the signed-in user, for this request only."""
    ctx = runtime.context(actor)
    try:
        yield ctx
    finally:
        runtime.release(ctx)


ContextDep = Annotated[ServiceContext, Depends(page_context)]


async def csrf_protect(request: Request, session: SessionDep) -> None:
    """Refuse (403) a non-GET page request whose form field ``csrf_token`` (or header
    ``X-CSRF-Token``) is not this session's token. On every :func:`page_router` route."""
    if request.method in _SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(_FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not session.csrf_matches(sent):
        raise CsrfRefused(
            "the form expired or did not come from this site (CSRF check failed); "
            "reload the page and try again"
        )


CsrfProtected = Depends(csrf_protect)


def page_router(**kwargs: Any) -> APIRouter:
    """A router for HTML pages: left out of the OpenAPI schema, CSRF checked on non-GET."""
    dependencies = [CsrfProtected, *kwargs.pop("dependencies", [])]
    return APIRouter(include_in_schema=False, dependencies=dependencies, **kwargs)


# --- API ------------------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="A personal API token (`ssk_...`).")


def api_user(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    """The user an ``Authorization: Bearer`` token stands for; 401 without a valid one."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated(
            "send a personal API token as 'Authorization: Bearer <token>'; create one on the "
            "API tokens page of the web UI or with `segsync tokens create`"
        )
    try:
        return users.authenticate_token(runtime.context(ANONYMOUS), credentials.credentials)
    except PermissionDenied as err:
        raise Unauthenticated(err.message) from None


ApiUser = Annotated[Actor, Depends(api_user)]


def api_context(runtime: RuntimeDep, actor: ApiUser) -> Iterator[ServiceContext]:
    """A ``ServiceContext`` acting as the token's user, for this request only."""
    ctx = runtime.context(actor)
    try:
        yield ctx
    finally:
        runtime.release(ctx)


ApiContextDep = Annotated[ServiceContext, Depends(api_context)]


def api_router(prefix: str, **kwargs: Any) -> APIRouter:
    """A router for ``/api/v1<prefix>``: every route needs a bearer token (401 without)."""
    dependencies = [Depends(api_user), *kwargs.pop("dependencies", [])]
    return APIRouter(prefix=API_PREFIX + prefix, dependencies=dependencies, **kwargs)
