"""Errors at the web edge: a ``SegsyncError`` becomes an HTML error page (pages) or JSON
``{"code": "...", "message": "..."}`` (``/api/``), with a precise status.

======================  ======  ===================================================
raised                  status  code
======================  ======  ===================================================
NotFound                404     ``not_found``
Conflict                409     ``conflict``
InputError, validation  422     ``invalid_input`` (``fields`` lists what is wrong)
PermissionDenied        403     ``forbidden``
CsrfRefused             403     ``csrf_failed``
Unauthenticated         401     ``unauthenticated`` (API: no, unknown or revoked token)
TooManySignIns          429     ``too_many_attempts``
FatalError              409     ``cannot_proceed``
RetriableError          503     ``temporarily_unavailable``
======================  ======  ===================================================

A page that needs a signed-in user redirects to the sign-in page instead (``SignInRequired``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from segsync.errors import (
    Conflict,
    FatalError,
    InputError,
    NotFound,
    PermissionDenied,
    RetriableError,
    SegsyncError,
)
from segsync.web.templating import render


class Unauthenticated(SegsyncError):
    """The API request carries no valid bearer token (401)."""


class CsrfRefused(PermissionDenied):
    """A page form came back without this session's CSRF token (403)."""


class TooManySignIns(SegsyncError):
    """Too many failed sign-ins for this email from this address (429)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SignInRequired(Exception):
    """A page needs a signed-in user: redirect to the sign-in page, then come back."""


_STATUS: tuple[tuple[type[SegsyncError], int, str], ...] = (
    (Unauthenticated, 401, "unauthenticated"),
    (CsrfRefused, 403, "csrf_failed"),
    (TooManySignIns, 429, "too_many_attempts"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (InputError, 422, "invalid_input"),
    (PermissionDenied, 403, "forbidden"),
    (FatalError, 409, "cannot_proceed"),
    (RetriableError, 503, "temporarily_unavailable"),
)
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_attempts",
}
_TITLES = {
    401: "Sign in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Cannot do that now",
    422: "Please check your input",
    429: "Too many attempts",
    503: "Temporarily unavailable",
}


def status_of(err: SegsyncError) -> tuple[int, str]:
    """The HTTP status and stable code for ``err``."""
    for kind, status, code in _STATUS:
        if isinstance(err, kind):
            return status, code
    return 500, "internal_error"


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _headers(err: Exception, status: int) -> dict[str, str]:
    headers: dict[str, str] = {}
    if isinstance(err, TooManySignIns):
        headers["Retry-After"] = str(err.retry_after)
    if isinstance(err, RetriableError) and err.retry_after is not None:
        headers["Retry-After"] = str(int(err.retry_after) + 1)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return headers


def error_page(
    request: Request, status: int, message: str, *, headers: dict[str, str] | None = None
) -> Response:
    """The HTML error page (``error.html``) with ``message``."""
    title = _TITLES.get(status, "Something went wrong")
    return render(
        request,
        "error.html",
        {"title": title, "message": message, "status": status},
        status_code=status,
        headers=headers,
    )


def json_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, **extra}, status, headers=headers)


def _field_name(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "request"


async def _segsync_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SegsyncError)
    status, code = status_of(exc)
    headers = _headers(exc, status)
    if is_api(request):
        return json_error(status, code, exc.message, headers)
    return error_page(request, status, exc.message, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"field": _field_name(item.get("loc", ())), "message": str(item.get("msg", ""))}
        for item in exc.errors()
    ]
    message = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or "invalid input"
    if is_api(request):
        return json_error(422, "invalid_input", message, fields=fields)
    return error_page(request, 422, message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404:
        detail = f"there is no page at {request.url.path}"
    headers = dict(exc.headers or {})
    if is_api(request):
        return json_error(exc.status_code, code, detail, headers)
    return error_page(request, exc.status_code, detail, headers=headers)


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/sign-in?next={quote(target, safe='/')}", status_code=303)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(SegsyncError, _segsync_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(SignInRequired, _sign_in_required)
