"""The API permission matrix, generated from the app's own routes: every route under
``/api/v1`` × every caller (no token, viewer, contributor, administrator) → the expected
status class. Expectations follow from the route, not from its code:

- no token → 401, everywhere;
- your own things (``/me``, ``/tokens``) → allowed for every role;
- administration (users, audit, connections other than reading them, run-all, the schedule
  — reading it too, like Admin > System and ``segsync schedule show`` —, erasures,
  notifications) → administrators only, 403 for the others;
- data (segments, exports, runs, schema, status, explain): reading is allowed to everyone signed in;
  changes are refused to viewers (403) and allowed to contributors and administrators — on
  targets that live on a connection shared with contributors (R2, R3).

Each request gets fresh targets (a new export, run, segment…) so one role's DELETE does not
change what the next role sees, and a valid body, so the answer is about permission, not
input. A route the table below does not know fails its test: add it there. Every response
body is also checked for secrets: the connection's API key, the app's secret key, passwords
and their hashes, and the callers' bearer tokens.
"""

from __future__ import annotations

import itertools
import json
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from segsync.domain.runs import RunStatus
from segsync.services import connections, exports, segments, users
from segsync.services import runs as run_service
from segsync.services.context import LOCAL_ADMIN, ServiceContext
from segsync.services.profiles import load_sample
from segsync.services.runs import queue
from segsync.settings import Settings
from segsync.simulator import RunningSimulator, SimulatorConfig, serve_in_thread
from segsync.storage.repositories.run_holds import RunHoldRepository
from segsync.storage.repositories.runs import RunRepository
from segsync.web import api as api_package
from segsync.web.app import create_app
from tests.conftest import fresh_settings

API_KEY = "sim-matrix-key-7f3e91c2d5a8"
PASSWORD = "matrix password 42"
ROLES: tuple[str | None, ...] = (None, "viewer", "contributor", "administrator")
SHARED = "Shared with contributors"
PRIVATE = "Administrators only"
GOLD = {"attribute": "LoyaltyTier", "op": "equals", "value": "Gold"}
SKIPPED_PATHS = {"/api/v1/openapi.json", "/api/v1/docs"}

SELF = {"me", "tokens"}
ADMIN_ONLY = {"users", "audit", "erasures", "schedule", "notifications"}
ADMIN_ONLY_ROUTES = {
    ("POST", "/api/v1/runs/run-all"),
    # attach acts on a detached export, which only administrators may change (C7)
    ("POST", "/api/v1/exports/{export_id}/attach"),
}
DATA = {"segments", "exports", "runs", "schema", "connections", "status", "explain"}

_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix} {next(_names)}"


def create_on(ctx: ServiceContext, name: str, connection: str) -> exports.ExportRecord:
    """An export of segment Gold on the connection named ``connection``."""
    settings = exports.ExportSettings(
        name, connections.connection_id(ctx, connection), exports.DataMatching("Email"), ["Gold"]
    )
    return exports.create_export(ctx, settings)


def _api_routes() -> list[tuple[str, str]]:
    """(method, path) of every route the API routers declare (found like create_app does)."""
    found: set[tuple[str, str]] = set()
    for info in pkgutil.iter_modules(api_package.__path__):
        router = getattr(import_module(f"{api_package.__name__}.{info.name}"), "router", None)
        for route in getattr(router, "routes", []):
            if isinstance(route, APIRoute) and route.path not in SKIPPED_PATHS:
                found.update((method, route.path) for method in route.methods)
    return sorted(found, key=lambda item: (item[1], item[0]))


def expected(method: str, path: str, role: str | None) -> str:
    """The status class a caller with ``role`` must get: "2xx", "401" or "403"."""
    if role is None:
        return "401"
    resource = path.removeprefix("/api/v1/").split("/")[0]
    if resource in SELF:
        return "2xx"
    admin_only = (
        resource in ADMIN_ONLY
        or (method, path) in ADMIN_ONLY_ROUTES
        or (resource == "connections" and method != "GET")
    )
    if admin_only:
        return "2xx" if role == "administrator" else "403"
    if resource not in DATA:
        raise AssertionError(f"{path}: unknown resource {resource!r}; classify it in this test")
    if method == "GET":
        return "2xx"
    return "403" if role == "viewer" else "2xx"


@dataclass
class World:
    """The app over a seeded data dir, its simulator, and each role's token."""

    client: TestClient
    ctx: ServiceContext
    simulator: RunningSimulator
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)

    def acting(self, role: str) -> ServiceContext:
        actor = users.resolve_actor(self.ctx, f"{role}@example.com")
        return self.client.app.state.runtime.context(actor)  # type: ignore[attr-defined,no-any-return]

    def secrets(self) -> list[str]:
        key_file = self.settings.secret_key_file
        found = [API_KEY, PASSWORD, "$argon2", *self.tokens.values()]
        if key_file.exists():
            found.append(key_file.read_text().strip())
        return found

    # fresh targets, made as the local administrator on the shared connection

    def connection(self) -> int:
        new = connections.NewConnection(
            unique("Connection"),
            type="autopilot",
            api_key=API_KEY,
            base_url=self.simulator.base_url,
            share_with_contributors=True,
        )
        return connections.add_connection(self.ctx, new, agree=True).id

    def export(self, *, detached: bool = False) -> int:
        name = unique("Export")
        record = create_on(self.ctx, name, SHARED)
        if detached:
            exports.detach_export(self.ctx, record.id)
        return record.id

    def run(self) -> int:
        name = exports.get_export(self.ctx, self.export()).name
        return queue.enqueue_run(self.ctx, name).run.id

    def held_run(self) -> int:
        """A run ended Held by the blast-radius hold, its verdict on record."""
        export_id = self.export()
        now = self.ctx.now()
        with self.ctx.db.session() as session:
            repo = RunRepository(session)
            run = repo.create(
                export_id=export_id,
                export_name=exports.get_export(self.ctx, export_id).name,
                connection_id=None,
                actor="matrix",
                now=now,
                status=RunStatus.PROCESSING,
                lease_owner="matrix",
            )
            RunHoldRepository(session).set_hold(run.id, {"held": True, "fingerprint": "f" * 64})
            repo.finish(run.id, RunStatus.HELD, now=now, message="held")
        return run.id

    def sent_run(self) -> int:
        """A run that ended Successful after adding people to a list (one to undo)."""
        name = exports.get_export(self.ctx, self.export()).name
        return run_service.run_export(self.ctx, name).id

    def segment(self) -> int:
        definition = {"name": unique("Segment"), "rules": [{"conditions": {"all": [GOLD]}}]}
        return segments.create_segment(self.ctx, json.dumps(definition)).id

    def user(self) -> int:
        info = users.add_user(self.ctx, f"{unique('user').replace(' ', '')}@example.com", "viewer")
        return info.id

    def token(self, role: str | None) -> int:
        ctx = self.acting(role or "viewer")
        return users.create_token(ctx, "to revoke").id


def definition() -> dict[str, Any]:
    return {"name": unique("Segment"), "rules": [{"conditions": {"all": [GOLD]}}]}


Body = Callable[[World], Any]


@dataclass(frozen=True)
class Spec:
    """How to call one route: a body, query parameters, and targets for its path ids."""

    body: Body | None = None
    params: dict[str, Any] | None = None
    targets: dict[str, Callable[[World, str | None], int]] | None = None


SPECS: dict[tuple[str, str], Spec] = {
    ("POST", "/api/v1/connections"): Spec(
        body=lambda w: {
            "name": unique("Connection"),
            "api_key": API_KEY,
            "base_url": w.simulator.base_url,
            "share_with_contributors": True,
            "agree": True,
        }
    ),
    ("POST", "/api/v1/connections/check"): Spec(
        body=lambda w: {"api_key": API_KEY, "base_url": w.simulator.base_url}
    ),
    ("PATCH", "/api/v1/connections/{connection_id}"): Spec(body=lambda w: {"contract_limit": 5000}),
    ("POST", "/api/v1/users"): Spec(
        body=lambda w: {
            "email": f"{unique('new').replace(' ', '')}@example.com",
            "role": "viewer",
            "password": PASSWORD,
        }
    ),
    ("PATCH", "/api/v1/users/{user_id}"): Spec(body=lambda w: {"role": "contributor"}),
    ("POST", "/api/v1/tokens"): Spec(body=lambda w: {"name": "matrix"}),
    ("POST", "/api/v1/exports"): Spec(
        body=lambda w: {
            "name": unique("Export"),
            "connection": SHARED,
            "email": "Email",
            "first_name": "FirstName",
            "segments": ["Gold"],
        }
    ),
    ("PATCH", "/api/v1/exports/{export_id}"): Spec(body=lambda w: {"removal": "add-only"}),
    ("POST", "/api/v1/exports/{export_id}/duplicate"): Spec(
        body=lambda w: {"name": unique("Copy")}
    ),
    ("POST", "/api/v1/exports/{export_id}/attach"): Spec(
        body=lambda w: {"connection": SHARED},
        targets={"export_id": lambda w, role: w.export(detached=True)},
    ),
    ("POST", "/api/v1/runs"): Spec(body=lambda w: {"export_id": w.export()}),
    ("POST", "/api/v1/exports/{export_id}/verify"): Spec(body=lambda w: {"repair": True}),
    ("PUT", "/api/v1/exports/{export_id}/verify-schedule"): Spec(
        body=lambda w: {"kind": "daily", "at": "03:00"}
    ),
    ("GET", "/api/v1/runs"): Spec(params={"limit": 5}),
    ("GET", "/api/v1/explain"): Spec(params={"email": "nobody@example.com"}),
    ("POST", "/api/v1/runs/{run_id}/approve"): Spec(targets={"run_id": lambda w, r: w.held_run()}),
    ("POST", "/api/v1/runs/{run_id}/dismiss"): Spec(targets={"run_id": lambda w, r: w.held_run()}),
    ("POST", "/api/v1/runs/{run_id}/undo"): Spec(targets={"run_id": lambda w, r: w.sent_run()}),
    ("POST", "/api/v1/segments"): Spec(body=lambda w: definition()),
    ("POST", "/api/v1/segments/estimate"): Spec(body=lambda w: definition()),
    ("PUT", "/api/v1/segments/{segment_id}"): Spec(body=lambda w: definition()),
    ("GET", "/api/v1/segments/suggest"): Spec(params={"attribute": "LoyaltyTier"}),
    ("GET", "/api/v1/audit"): Spec(params={"limit": 20}),
    ("PUT", "/api/v1/schedule"): Spec(
        body=lambda w: {"frequency": "weekly", "weekdays": ["mon"], "times": ["06:00"]}
    ),
    ("POST", "/api/v1/erasures"): Spec(body=lambda w: {"email": "nobody@example.com"}),
    ("POST", "/api/v1/erasures/lift"): Spec(body=lambda w: {"email": "nobody@example.com"}),
    ("POST", "/api/v1/notifications/read"): Spec(body=lambda w: {"all": True}),
}
NO_BODY = {"GET", "DELETE"}
"""Routes not in SPECS are called without a body: fine for these methods, and for POSTs
that take none (the test fails with 422 for one that needs a body: add it to SPECS)."""

TARGETS: dict[str, Callable[[World, str | None], int]] = {
    "connection_id": lambda w, role: w.connection(),
    "export_id": lambda w, role: w.export(),
    "run_id": lambda w, role: w.run(),
    "segment_id": lambda w, role: w.segment(),
    "user_id": lambda w, role: w.user(),
    "token_id": lambda w, role: w.token(role),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir: Path = tmp_path_factory.mktemp("matrix") / "data"
    settings = fresh_settings(data_dir)
    config = SimulatorConfig(api_keys=[API_KEY], rate_limit=0)
    with serve_in_thread(config) as simulator:
        app = create_app(settings)
        ctx: ServiceContext = app.state.runtime.context(LOCAL_ADMIN)
        load_sample(ctx, profiles=120, seed=3)
        segments.create_segment(
            ctx, json.dumps({"name": "Gold", "rules": [{"conditions": {"all": [GOLD]}}]})
        )
        segments.refresh_segments(ctx, ["Gold"])
        for name, shared in ((SHARED, True), (PRIVATE, False)):
            new = connections.NewConnection(
                name,
                type="autopilot",
                api_key=API_KEY,
                base_url=simulator.base_url,
                share_with_contributors=shared,
            )
            connections.add_connection(ctx, new, agree=True)
        with TestClient(app, follow_redirects=False) as client:
            w = World(client=client, ctx=ctx, simulator=simulator, settings=settings)
            for role in ROLES[1:]:
                assert role is not None
                users.add_user(ctx, f"{role}@example.com", role, PASSWORD)
                w.tokens[role] = users.create_token(w.acting(role), "matrix").token
            yield w
        app.state.runtime.release(ctx)


def _call(world: World, method: str, path: str, role: str | None) -> Any:
    spec = SPECS.get((method, path), Spec())
    url = path
    for name, make in {**TARGETS, **(spec.targets or {})}.items():
        if "{" + name + "}" in url:
            url = url.replace("{" + name + "}", str(make(world, role)))
    assert "{" not in url, f"{path}: no target maker for its path parameter; add one to TARGETS"
    headers = {} if role is None else {"Authorization": f"Bearer {world.tokens[role]}"}
    body = spec.body(world) if spec.body is not None else None
    return world.client.request(method, url, headers=headers, json=body, params=spec.params)


def _class(status: int) -> str:
    return "2xx" if 200 <= status < 300 else str(status)


@pytest.mark.parametrize(("method", "path"), _api_routes(), ids=lambda v: str(v))
def test_every_role_gets_the_status_its_permissions_give(
    world: World, method: str, path: str
) -> None:
    got: dict[str | None, str] = {}
    leaks: list[str] = []
    for role in ROLES:
        response = _call(world, method, path, role)
        got[role] = _class(response.status_code)
        assert response.status_code < 500, f"{method} {path} as {role}: {response.text}"
        got[role] += "" if got[role] == expected(method, path, role) else f" ({response.text})"
        text = response.text
        leaks += [f"{role}: {secret[:6]}…" for secret in world.secrets() if secret in text]
    want = {role: expected(method, path, role) for role in ROLES}
    assert got == want, f"{method} {path}"
    assert not leaks, f"{method} {path} leaked secrets: {leaks}"


def test_the_matrix_covers_the_main_resources() -> None:
    resources = {path.removeprefix("/api/v1/").split("/")[0] for _, path in _api_routes()}
    assert {"connections", "exports", "runs", "segments", "users", "tokens", "me"} <= resources
    unknown = {(m, p) for m, p in SPECS if (m, p) not in set(_api_routes())}
    assert not unknown, f"SPECS names routes the app no longer has: {sorted(unknown)}"


def test_contributors_are_refused_on_exports_of_private_connections(world: World) -> None:
    export = create_on(world.ctx, unique("Private export"), PRIVATE)
    headers = {"Authorization": f"Bearer {world.tokens['contributor']}"}
    client = world.client
    assert client.get(f"/api/v1/exports/{export.id}", headers=headers).status_code == 200
    for method, url, body in (
        ("PATCH", f"/api/v1/exports/{export.id}", {"removal": "add-only"}),
        ("DELETE", f"/api/v1/exports/{export.id}", None),
        ("POST", "/api/v1/runs", {"export_id": export.id}),
    ):
        response = client.request(method, url, headers=headers, json=body)
        assert response.status_code == 403, f"{method} {url}: {response.text}"
        assert response.json()["code"] == "forbidden"
