"""Fixtures for the web tests: an app on a temporary data dir, a movable clock, and signed-in
clients per role.

    def test_something(web: WebHarness) -> None:
        admin = web.client_as("administrator")           # signed in, keeps its cookies
        page = admin.get("/admin/connections")
        admin.post("/admin/connections/x/remove", data=web.form(admin, "/admin/connections"))
        token = web.api_token("viewer")                  # a bearer token for /api/v1
        web.api.get("/api/v1/me", headers=web.bearer(token))
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from segsync.services import users
from segsync.services.context import LOCAL_ADMIN, ServiceContext
from segsync.settings import Settings
from segsync.web.app import create_app
from tests.conftest import FROZEN_NOW

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Clock:
    """A clock tests move by hand: ``clock.advance(minutes=16)``."""

    now: datetime = FROZEN_NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def csrf_of(html: str) -> str:
    """The CSRF token in a rendered page's first form."""
    match = _CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


@dataclass
class WebHarness:
    """The app under test and helpers to act as each role."""

    app: FastAPI
    clock: Clock
    settings: Settings
    clients: list[TestClient] = field(default_factory=list)
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def ctx(self) -> ServiceContext:
        """A context acting as the local administrator (to set things up directly)."""
        return self.app.state.runtime.context(LOCAL_ADMIN)  # type: ignore[no-any-return]

    def client(self) -> TestClient:
        """A new anonymous browser (its own cookie jar)."""
        client = TestClient(self.app, follow_redirects=False)
        self.clients.append(client)
        return client

    @property
    def api(self) -> TestClient:
        """A client for /api/v1 (send ``headers=web.bearer(token)``)."""
        return self.client()

    def user(self, role: str, email: str | None = None, *, password: bool = True) -> str:
        """Make sure a user with ``role`` exists (password :data:`PASSWORD`, or none: cheaper,
        for API-only users); its email."""
        address = email or f"{role}@example.com"
        existing = {u.email for u in users.list_users(self.ctx)}
        if address not in existing:
            users.add_user(self.ctx, address, role, PASSWORD if password else None)
        return address

    def sign_in(self, client: TestClient, email: str, password: str = PASSWORD) -> Any:
        page = client.get("/sign-in")
        assert page.status_code == 200, page.text
        return client.post(
            "/sign-in",
            data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
        )

    def client_as(self, role: str, email: str | None = None) -> TestClient:
        """A browser signed in as a user with ``role`` (created if needed)."""
        address = self.user(role, email)
        client = self.client()
        response = self.sign_in(client, address)
        assert response.status_code == 303, response.text
        return client

    def form(self, client: TestClient, page: str, **fields: Any) -> dict[str, Any]:
        """``fields`` plus the CSRF token of ``page`` (fetched with ``client``)."""
        response = client.get(page)
        assert response.status_code == 200, response.text
        return {"csrf_token": csrf_of(response.text), **fields}

    def api_token(self, role: str, email: str | None = None) -> str:
        """A bearer token of a user with ``role`` (created on first use, without a password
        unless it exists already)."""
        address = self.user(role, email, password=False)
        if address not in self._tokens:
            actor = users.resolve_actor(self.ctx, address)
            ctx = self.app.state.runtime.context(actor)
            self._tokens[address] = users.create_token(ctx, "tests").token
        return self._tokens[address]

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def _template_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated data dir with ``<role>@example.com`` for each role: copied per test, which is much
    faster than migrating and hashing a password for every test."""
    data_dir = tmp_path_factory.mktemp("web-template") / "data"
    app = create_app(Settings(data_dir=data_dir), now=Clock())
    harness = WebHarness(app, Clock(), Settings(data_dir=data_dir))
    for role in ("administrator", "contributor", "viewer"):
        harness.user(role)
    app.state.runtime.close()
    return data_dir


@pytest.fixture
def web_settings(tmp_path: Path, _template_data_dir: Path) -> Settings:
    data_dir = tmp_path / "data"
    shutil.copytree(_template_data_dir, data_dir)
    return Settings(data_dir=data_dir)


@pytest.fixture
def web(web_settings: Settings, clock: Clock) -> Iterator[WebHarness]:
    """The app with ``administrator@``, ``contributor@`` and ``viewer@example.com`` (password
    :data:`PASSWORD`) already made."""
    harness = WebHarness(create_app(web_settings, now=clock), clock, web_settings)
    yield harness
    for client in harness.clients:
        client.close()
    harness.app.state.runtime.close()


@pytest.fixture
def fresh_web(tmp_path: Path, clock: Clock) -> Iterator[WebHarness]:
    """The app on an empty data dir: no user yet (the first-run page)."""
    settings = Settings(data_dir=tmp_path / "fresh")
    harness = WebHarness(create_app(settings, now=clock), clock, settings)
    yield harness
    for client in harness.clients:
        client.close()
    harness.app.state.runtime.close()
