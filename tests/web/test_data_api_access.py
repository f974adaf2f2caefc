"""Every ``/api/v1`` route of the Data side (segments, exports, runs, schema), generated from
the app's routes: no token → 401; a viewer's changes → 403 (R2); a viewer's reads → 200."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from fastapi.routing import APIRoute

from segsync.services import exports, segments
from segsync.services.runs import queue
from segsync.web.api import exports as api_exports
from segsync.web.api import runs as api_runs
from segsync.web.api import schema as api_schema
from segsync.web.api import segments as api_segments
from tests.web.conftest import WebHarness
from tests.web.test_data_fixtures import data_web_fixture, sim_fixture  # noqa: F401

PREFIXES = ("/api/v1/segments", "/api/v1/exports", "/api/v1/runs", "/api/v1/schema")
DEFINITION = {
    "name": "Viewer's",
    "rules": [{"conditions": {"all": [{"attribute": "City", "op": "is_empty"}]}}],
}
BODIES: dict[tuple[str, str], dict[str, Any] | None] = {
    ("POST", "/api/v1/segments"): DEFINITION,
    ("POST", "/api/v1/segments/estimate"): DEFINITION,
    ("PUT", "/api/v1/segments/{segment_id}"): DEFINITION,
    ("DELETE", "/api/v1/segments/{segment_id}"): None,
    ("POST", "/api/v1/segments/{segment_id}/refresh"): None,
    ("POST", "/api/v1/exports"): {
        "name": "V",
        "connection": "Shared",
        "email": "Email",
        "segments": ["Lisbon"],
    },
    ("PATCH", "/api/v1/exports/{export_id}"): {"list_prefix": "v"},
    ("DELETE", "/api/v1/exports/{export_id}"): None,
    ("POST", "/api/v1/exports/{export_id}/duplicate"): {"name": "V copy"},
    ("POST", "/api/v1/exports/{export_id}/detach"): None,
    ("POST", "/api/v1/exports/{export_id}/attach"): {"connection": "Shared"},
    ("POST", "/api/v1/runs"): {"export_id": 0},
    ("POST", "/api/v1/runs/run-all"): None,
    ("POST", "/api/v1/runs/{run_id}/cancel"): None,
    ("POST", "/api/v1/runs/{run_id}/approve"): None,  # a viewer is refused before the status
    ("POST", "/api/v1/runs/{run_id}/dismiss"): None,
    ("POST", "/api/v1/runs/{run_id}/undo"): None,
}


def _routes(web: WebHarness) -> list[tuple[str, str]]:
    """(method, path) of the routes of the Data routers, as create_app includes them."""
    found = []
    for module in (api_segments, api_exports, api_runs, api_schema):
        for route in module.router.routes:
            if isinstance(route, APIRoute) and route.path.startswith(PREFIXES):
                found.extend((method, route.path) for method in sorted(route.methods))
    openapi = set(web.api.get("/api/v1/openapi.json").json()["paths"])
    assert {path for _, path in found} <= openapi  # the app serves them all
    return found


def test_every_data_api_route_needs_a_token_and_refuses_viewer_changes(
    data_web: WebHarness,
) -> None:
    ctx = data_web.ctx
    ids = {
        "segment_id": next(s.id for s in segments.list_segments(ctx) if s.name == "Lisbon"),
        "export_id": exports.export_id(ctx, "News"),
        "run_id": queue.enqueue_run(ctx, "News").run.id,
    }
    routes = _routes(data_web)
    assert len(routes) >= 25
    api = data_web.api
    viewer = data_web.bearer(data_web.api_token("viewer"))
    mutations = {(m, p) for m, p in routes if m in {"POST", "PUT", "PATCH", "DELETE"}}
    assert mutations == set(BODIES), "give every new mutating route a body in BODIES"
    for method, path in routes:
        url = path.format(**ids)
        query = "?attribute=City" if path.endswith("/suggest") else ""
        body = BODIES.get((method, path))
        if body and "export_id" in body:
            body = {**body, "export_id": ids["export_id"]}
        anonymous = api.request(method, url + query, json=body)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.json()["code"] == "unauthenticated"
        as_viewer = api.request(method, url + query, json=body, headers=viewer)
        expected = 403 if (method, path) in mutations else 200
        assert as_viewer.status_code == expected, (method, path, as_viewer.text)
    # Nothing changed.
    assert {s.name for s in segments.list_segments(ctx)} == {"Lisbon", "Porto"}
    assert {r.name for r in exports.list_exports(ctx)} == {"News", "Secret"}


def test_the_openapi_schema_describes_the_data_routes(data_web: WebHarness) -> None:
    schema = data_web.api.get("/api/v1/openapi.json").json()
    paths = schema["paths"]
    assert "/api/v1/exports/{export_id}" in paths
    create = paths["/api/v1/exports"]["post"]["requestBody"]["content"]["application/json"]
    assert create["schema"]["$ref"].endswith("/NewExport")
    run = paths["/api/v1/runs/{run_id}"]["get"]["responses"]["200"]["content"]
    assert run["application/json"]["schema"]["$ref"].endswith("/RunOut")
    assert "ProgressOut" in schema["components"]["schemas"]


def test_schema_lists_attributes_and_the_builder_vocabulary(data_web: WebHarness) -> None:
    token = data_web.api_token("viewer")
    body = data_web.api.get("/api/v1/schema", headers=data_web.bearer(token)).json()
    assert body["profile_table"] == "people"
    people = body["tables"][0]
    assert {"name": "Score", "type": "number"} in people["attributes"]
    assert "between" in body["vocabulary"]["ops_by_type"]["number"]
    assert "contains" not in body["vocabulary"]["ops_by_type"]["number"]
    assert body["vocabulary"]["operators"]["within_last"]["value"] == "period"
    assert "Company" in body["mapping"]["autopilot"]["standard"]
    assert "integer" in body["mapping"]["autopilot"]["custom_types"]


def test_the_builder_page_reads_the_tables_columns_without_counting_their_rows(
    data_web: WebHarness,
) -> None:
    """The API's schema counts each table's rows; the builder's page embeds the same schema
    without them (its script shows none), so opening it reads each table's columns only."""
    token = data_web.api_token("viewer")
    api = data_web.api.get("/api/v1/schema", headers=data_web.bearer(token)).json()
    page = data_web.client_as("contributor").get("/data/segments/new")
    assert page.status_code == 200
    found = re.search(r'data-schema="([^"]*)"', page.text)
    assert found is not None
    embedded = json.loads(html.unescape(found.group(1)))
    assert all(isinstance(t["row_count"], int) and t["row_count"] > 0 for t in api["tables"])
    assert all(t["row_count"] is None for t in embedded["tables"])
    without_counts = [{**t, "row_count": None} for t in api["tables"]]
    assert embedded["tables"] == without_counts
    assert embedded["relationships"] == api["relationships"]
    assert embedded["profile_table"] == api["profile_table"] == "people"
