"""The web app: ``create_app(settings)`` builds the FastAPI application (pages + ``/api/v1``).

Routers are found, not listed: every module in :mod:`segsync.web.routes` (HTML pages) and
:mod:`segsync.web.api` (JSON) that defines a module-level ``router`` (an ``APIRouter``) is
included, in module-name order. To add pages, add a module there; nothing else to edit.
"""

from __future__ import annotations

import gc
import importlib
import pkgutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from types import ModuleType

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from segsync import __version__
from segsync.services.context import open_context, utc_now
from segsync.settings import Settings
from segsync.web import api as api_package
from segsync.web import routes as routes_package
from segsync.web.errors import install_error_handlers
from segsync.web.runtime import WebRuntime
from segsync.web.security import SecurityMiddleware, SessionCodec, session_secret
from segsync.web.templating import build_templates

STATIC_DIR = Path(__file__).resolve().parent / "static"
API_DESCRIPTION = (
    "The segsync REST API. Authenticate every request with a personal API token: "
    "`Authorization: Bearer ssk_...` (create one on the web UI's API tokens page or with "
    '`segsync tokens create`). Errors are JSON `{"code": ..., "message": ...}`.'
)


def _routers(package: ModuleType) -> list[APIRouter]:
    found: list[APIRouter] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            found.append(router)
    return found


def settle_startup_heap() -> None:
    """Collect once, then move every object alive now (modules, the app, its routes, templates
    and the DB engine) out of the garbage collector's reach: they live as long as the process.
    Otherwise each full collection walks those ~200,000 objects again, and once a big list has
    been served the pauses reach 150–300 ms in the middle of requests (docs/design.md "Lists at
    scale"). ``segsync serve`` calls it once, after building the app; tests, which build many
    apps in one process, do not."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings, *, now: Callable[[], datetime] | None = None) -> FastAPI:
    """The web UI and REST API over the data dir of ``settings``.

    Opens (and migrates) the metadata DB once; each request gets its own ``ServiceContext``
    over it. ``now`` injects the clock (tests: sessions' expiry, the sign-in rate limit, and
    every service's timestamps).
    """
    clock = now or utc_now
    base = open_context(settings, now=clock)
    runtime = WebRuntime(
        settings=settings,
        base=base,
        now=clock,
        sessions=SessionCodec(session_secret(settings), clock),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            runtime.close()

    app = FastAPI(
        title="segsync",
        version=__version__,
        description=API_DESCRIPTION,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.templates = build_templates()
    install_error_handlers(app)
    app.add_middleware(
        SecurityMiddleware,
        codec=runtime.sessions,
        secure_cookies=settings.web_secure_cookies,
    )
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    for router in _routers(routes_package) + _routers(api_package):
        app.include_router(router)
    return app
