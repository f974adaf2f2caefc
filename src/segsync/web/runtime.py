"""What the web app holds for its lifetime, and the per-request :class:`ServiceContext`.

The metadata DB is opened (and migrated) once, in :func:`segsync.web.app.create_app`; each
request gets its own ``ServiceContext(settings, db, now, actor)`` over that shared DB. The
profile engine (a DuckDB file allows one read-write process) is opened lazily by the services
that need it and closed at the end of the request by :meth:`WebRuntime.release` — which,
unlike ``ServiceContext.close``, leaves the shared DB open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from segsync.services.context import ServiceContext
from segsync.services.users.access import Actor
from segsync.settings import Settings
from segsync.web.security import SessionCodec


@dataclass
class WebRuntime:
    """The app's settings, its shared DB (inside ``base``), its clock and security helpers.

    Reach it from a route with :data:`segsync.web.deps.RuntimeDep`.
    """

    settings: Settings
    base: ServiceContext
    now: Callable[[], datetime]
    sessions: SessionCodec
    has_admin: bool = False

    def context(self, actor: Actor) -> ServiceContext:
        """A fresh context acting as ``actor`` over the shared DB; give it back to
        :meth:`release` when the request ends."""
        return ServiceContext(settings=self.settings, db=self.base.db, now=self.now, actor=actor)

    @staticmethod
    def release(ctx: ServiceContext) -> None:
        """Close what the request opened (the profile engine), not the shared DB."""
        if ctx.profiles_opened:
            ctx.profiles.close()

    def close(self) -> None:
        """At shutdown: close the shared DB."""
        self.base.close()
