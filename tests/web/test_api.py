"""The REST API (issue 6 §2): bearer tokens, the role matrix, JSON errors, no secrets, OpenAPI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from segsync.services import connections, users
from segsync.simulator import RunningSimulator, Simulator, SimulatorConfig, serve_in_thread
from segsync.web.api.docs import PUBLIC_PATHS
from tests.web.conftest import PASSWORD, WebHarness

KEY = "sk-api-7d05536ab4f1c9e2"


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with serve_in_thread(Simulator(SimulatorConfig(api_keys=[KEY], rate_limit=0))) as running:
        yield running


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) under /api/v1, however FastAPI nests included routers."""
    found: list[tuple[str, str]] = []

    def walk(routes: Any) -> None:
        for route in routes:
            if hasattr(route, "effective_route_contexts"):
                walk(route.effective_route_contexts())
                continue
            path = getattr(route, "path", "")
            for method in getattr(route, "methods", None) or ():
                if path.startswith("/api/v1") and method != "HEAD":
                    found.append((method, path))

    walk(app.routes)
    return sorted(set(found))


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_the_route_list_finds_the_api(web: WebHarness) -> None:
    routes = api_routes(web.app)
    assert ("GET", "/api/v1/me") in routes
    assert ("DELETE", "/api/v1/connections/{connection_id}") in routes


def test_every_api_route_refuses_a_request_without_a_valid_token(web: WebHarness) -> None:
    client = web.api
    for method, path in api_routes(web.app):
        if path in PUBLIC_PATHS:
            continue
        for headers in ({}, web.bearer("ssk_not-a-real-token")):
            response = client.request(method, concrete(path), headers=headers, json={})
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["code"] == "unauthenticated"
            assert response.headers["www-authenticate"] == "Bearer"


def test_a_session_cookie_does_not_authenticate_the_api(web: WebHarness) -> None:
    browser = web.client_as("administrator")
    assert browser.get("/api/v1/me").status_code == 401


# (method, path, body, the roles that may) — every API route of this module's routers.
MATRIX: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("GET", "/api/v1/me", None, {"viewer", "contributor", "administrator"}),
    ("GET", "/api/v1/users", None, {"administrator"}),
    ("POST", "/api/v1/users", {"email": "x@example.com", "role": "viewer"}, {"administrator"}),
    ("PATCH", "/api/v1/users/{viewer}", {"role": "viewer"}, {"administrator"}),
    ("DELETE", "/api/v1/users/{other}", None, {"administrator"}),
    ("GET", "/api/v1/tokens", None, {"viewer", "contributor", "administrator"}),
    ("POST", "/api/v1/tokens", {"name": "t"}, {"viewer", "contributor", "administrator"}),
    ("GET", "/api/v1/connections", None, {"viewer", "contributor", "administrator"}),
    ("GET", "/api/v1/connections/consent", None, {"viewer", "contributor", "administrator"}),
    ("GET", "/api/v1/connections/types", None, {"viewer", "contributor", "administrator"}),
    ("POST", "/api/v1/connections/check", {"api_key": KEY}, {"administrator"}),
    (
        "POST",
        "/api/v1/connections",
        {"name": "N", "api_key": KEY, "agree": True},
        {"administrator"},
    ),
    ("GET", "/api/v1/connections/{private}", None, {"administrator"}),
    ("GET", "/api/v1/connections/{private}/fields", None, {"administrator"}),
    ("PATCH", "/api/v1/connections/{private}", {"rate_limit": 3}, {"administrator"}),
    ("POST", "/api/v1/connections/{private}/test", None, {"administrator"}),
    ("DELETE", "/api/v1/connections/{spare}", None, {"administrator"}),
    ("GET", "/api/v1/audit", None, {"administrator"}),
    ("GET", "/api/v1/audit/export", None, {"administrator"}),
]


def test_the_matrix_covers_every_api_route(web: WebHarness) -> None:
    covered = {(m, re.sub(r"\{[^}]+\}", "{}", p)) for m, p, _, _ in MATRIX}
    covered |= {("DELETE", "/api/v1/tokens/{}")}  # own tokens: test_tokens_belong_to_their_user
    routes = {(m, re.sub(r"\{[^}]+\}", "{}", p)) for m, p in api_routes(web.app)}
    mine = {
        r for r in routes if r[1].split("/")[3] in {"me", "users", "tokens", "connections", "audit"}
    }
    assert mine <= covered, f"add these routes to MATRIX: {sorted(mine - covered)}"


@pytest.mark.parametrize("role", ["viewer", "contributor", "administrator"])
@pytest.mark.parametrize(("method", "path", "body", "allowed"), MATRIX)
def test_role_matrix(
    web: WebHarness,
    sim: RunningSimulator,
    role: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    allowed: set[str],
) -> None:
    ids: dict[str, int] = {}
    for label in ("private", "spare"):
        if "{" + label + "}" in path:
            new = connections.NewConnection(
                label, type="autopilot", api_key=KEY, base_url=sim.base_url
            )
            ids[label] = connections.add_connection(web.ctx, new, agree=True).id
    web.user("viewer", password=False)
    other = web.user("viewer", "other@example.com", password=False)

    by_email = {u.email: u.id for u in users.list_users(web.ctx)}
    ids["viewer"], ids["other"] = by_email["viewer@example.com"], by_email[other]
    if body is not None and "api_key" in body:
        body = {**body, "base_url": sim.base_url}
    token = web.api_token(role, f"{role}-matrix@example.com")
    response = web.api.request(method, path.format(**ids), headers=web.bearer(token), json=body)
    if role in allowed:
        assert response.status_code < 300, (role, method, path, response.text)
    else:
        assert response.status_code == 403, (role, method, path, response.text)
        assert response.json()["code"] == "forbidden"
    assert KEY not in response.text


def test_contributors_see_only_shared_connections_without_settings(
    web: WebHarness, sim: RunningSimulator
) -> None:
    for name, shared in (("Shared", True), ("Private", False)):
        new = connections.NewConnection(
            name,
            type="autopilot",
            api_key=KEY,
            base_url=sim.base_url,
            share_with_contributors=shared,
        )
        connections.add_connection(web.ctx, new, agree=True)
    token = web.api_token("contributor")
    listed = web.api.get("/api/v1/connections", headers=web.bearer(token)).json()
    assert [c["name"] for c in listed] == ["Shared"]
    assert set(listed[0]) == {"id", "name", "type"}
    admin = web.api.get("/api/v1/connections", headers=web.bearer(web.api_token("administrator")))
    assert {c["name"] for c in admin.json()} == {"Shared", "Private"}
    assert all(c["secret"]["hint"].startswith("••••") for c in admin.json())
    assert KEY not in admin.text


def test_add_connection_over_the_api_never_returns_the_key(
    web: WebHarness, sim: RunningSimulator
) -> None:
    headers = web.bearer(web.api_token("administrator"))
    body = {"name": "Main", "api_key": KEY, "base_url": sim.base_url, "agree": True}
    created = web.api.post("/api/v1/connections", json=body, headers=headers)
    assert created.status_code == 201
    assert KEY not in created.text
    again = web.api.post("/api/v1/connections", json=body, headers=headers)
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"
    no_agree = web.api.post(
        "/api/v1/connections", json={**body, "name": "B", "agree": False}, headers=headers
    )
    assert no_agree.status_code == 422
    assert no_agree.json()["code"] == "invalid_input"
    events = web.api.get("/api/v1/audit", headers=headers)
    assert "connection.added" in events.text
    assert KEY not in events.text
    assert KEY not in web.api.get("/api/v1/audit/export", headers=headers).text


def test_errors_are_json_with_stable_codes(web: WebHarness) -> None:
    headers = web.bearer(web.api_token("administrator"))
    missing = web.api.get("/api/v1/connections/999", headers=headers)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    invalid = web.api.post("/api/v1/users", json={"role": "viewer"}, headers=headers)
    assert (invalid.status_code, invalid.json()["code"]) == (422, "invalid_input")
    assert "email" in invalid.json()["message"]
    bad_role = web.api.post(
        "/api/v1/users", json={"email": "z@example.com", "role": "boss"}, headers=headers
    )
    assert (bad_role.status_code, bad_role.json()["code"]) == (422, "invalid_input")
    no_route = web.api.get("/api/v1/nothing-here", headers=headers)
    assert (no_route.status_code, no_route.json()["code"]) == (404, "not_found")
    me = web.api.get("/api/v1/users", headers=headers).json()
    admin_id = next(u["id"] for u in me if u["email"] == "administrator@example.com")
    others = [u for u in me if u["role"] == "administrator" and u["id"] != admin_id]
    for u in others:
        web.api.delete(f"/api/v1/users/{u['id']}", headers=headers)
    last = web.api.patch(f"/api/v1/users/{admin_id}", json={"role": "viewer"}, headers=headers)
    assert (last.status_code, last.json()["code"]) == (409, "conflict")


def test_tokens_belong_to_their_user(web: WebHarness) -> None:
    viewer = web.bearer(web.api_token("viewer"))
    made = web.api.post("/api/v1/tokens", json={"name": "second"}, headers=viewer)
    assert made.status_code == 201
    token = made.json()["token"]
    assert (
        web.api.get("/api/v1/me", headers=web.bearer(token)).json()["email"] == "viewer@example.com"
    )
    listed = web.api.get("/api/v1/tokens", headers=viewer).json()
    assert all("token" not in t for t in listed)
    contributor = web.bearer(web.api_token("contributor"))
    other = web.api.delete(f"/api/v1/tokens/{made.json()['id']}", headers=contributor)
    assert other.status_code == 404
    revoked = web.api.delete(f"/api/v1/tokens/{made.json()['id']}", headers=viewer)
    assert revoked.status_code == 200
    assert web.api.get("/api/v1/me", headers=web.bearer(token)).status_code == 401


def test_me_lists_the_permissions_of_the_role(web: WebHarness) -> None:
    me = web.api.get("/api/v1/me", headers=web.bearer(web.api_token("viewer"))).json()
    assert me["role"] == "viewer"
    assert me["permissions"]["view"] is True
    assert me["permissions"]["manage_users"] is False


def test_openapi_schema_and_docs_page(web: WebHarness) -> None:
    schema = web.api.get("/api/v1/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/connections" in schema["paths"]
    assert not any(path.startswith(("/admin", "/sign-in", "/account")) for path in schema["paths"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    docs = web.api.get("/api/v1/docs")
    assert docs.status_code == 200
    assert "/api/v1/connections/{connection_id}" in docs.text
    assert "cdn" not in docs.text.lower()
    assert PASSWORD not in docs.text
