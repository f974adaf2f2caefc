"""Roles in a real browser (R2–R5): a contributor sees only shared connections and others'
exports as view-only; a viewer sees no button that changes anything, and a forged POST is
refused anyway."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from segsync.services import connections, exports, runs
from segsync.services.context import open_context
from segsync.services.exports import forms as export_forms
from segsync.simulator import DEFAULT_API_KEY
from tests.browser.harness import SEGMENTS, Site, save_screenshot, sign_in

SHARED = "Team Autopilot"
PRIVATE = "Admins-only Autopilot"
TEAM_EXPORT = "Team weekly"
PRIVATE_EXPORT = "Board VIP list"
CHANGE_BUTTONS = ("Run", "Dry run", "Edit", "Create duplicate", "Detach", "Remove", "Run all")


@dataclass(frozen=True)
class Setup:
    team_export: int
    private_export: int


@pytest.fixture(scope="module")
def setup(site: Site) -> Setup:
    """Two connections (one shared with contributors) and an export on each, made by the
    administrator through the services."""
    segment = next(iter(SEGMENTS))
    with open_context(site.settings) as ctx:
        matching = exports.DataMatching("Email")
        for name, shared, export in ((SHARED, True, TEAM_EXPORT), (PRIVATE, False, PRIVATE_EXPORT)):
            new = connections.NewConnection(
                name,
                type="autopilot",
                api_key=DEFAULT_API_KEY,
                base_url=site.simulator.base_url,
                share_with_contributors=shared,
            )
            connection = connections.add_connection(ctx, new, agree=True)
            settings = exports.ExportSettings(export, connection.id, matching, [segment])
            exports.create_export(ctx, settings)
        ids = export_forms.export_ids(ctx)
    return Setup(team_export=ids[TEAM_EXPORT], private_export=ids[PRIVATE_EXPORT])


def test_contributor_sees_only_shared_connections_and_others_exports_view_only(
    page: Page, site: Site, setup: Setup
) -> None:
    sign_in(page, "contributor", then="/data/exports")
    team = page.get_by_role("row").filter(
        has=page.get_by_role("link", name=TEAM_EXPORT, exact=True)
    )
    private = page.get_by_role("row").filter(
        has=page.get_by_role("link", name=PRIVATE_EXPORT, exact=True)
    )
    expect(team.get_by_role("cell", name="Edit", exact=True)).to_be_visible()
    expect(team.get_by_role("button", name=re.compile("^Run"))).to_be_visible()
    expect(private.get_by_role("cell", name="View", exact=True)).to_be_visible()
    expect(private.get_by_role("button")).to_have_count(0)
    expect(page.get_by_role("button", name="Run all")).to_have_count(0)
    save_screenshot(page, "exports-contributor")

    page.get_by_role("link", name=PRIVATE_EXPORT, exact=True).click()
    expect(page.get_by_text("read-only")).to_be_visible()
    for name in CHANGE_BUTTONS:
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Edit", exact=True)).to_have_count(0)

    page.goto("/data/exports/new")
    expect(page.get_by_role("radio", name=SHARED)).to_be_visible()
    expect(page.get_by_role("radio", name=PRIVATE)).to_have_count(0)
    expect(page.get_by_text("API key")).to_have_count(0)


def test_viewer_can_change_nothing_and_a_forged_post_is_refused(
    page: Page, site: Site, setup: Setup
) -> None:
    sign_in(page, "viewer", then="/data/exports")
    expect(page.get_by_role("link", name=TEAM_EXPORT, exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Add destination")).to_have_count(0)
    for name in CHANGE_BUTTONS:
        expect(page.get_by_role("button", name=re.compile(f"^{name}\\b"))).to_have_count(0)
    save_screenshot(page, "exports-viewer")

    page.get_by_role("link", name=TEAM_EXPORT, exact=True).click()
    for name in CHANGE_BUTTONS:
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Segments").click()
    expect(page.get_by_role("link", name="New segment")).to_have_count(0)
    expect(page.get_by_role("link", name="Quick segment")).to_have_count(0)

    # The session's own CSRF token, so only the permission check can refuse these.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    for path in (
        f"/data/exports/{setup.team_export}/run",
        f"/data/exports/{setup.team_export}/remove",
        "/data/exports/run-all",
    ):
        response = page.request.post(path, form={"csrf_token": token}, max_redirects=0)
        assert response.status == 403, f"{path}: {response.status}"
    with open_context(site.settings) as ctx:
        assert runs.list_runs(ctx, export=TEAM_EXPORT) == []
        assert TEAM_EXPORT in export_forms.export_ids(ctx)
