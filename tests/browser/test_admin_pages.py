"""Admin pages in a real browser: connections (add with Connect in place), permissions, system."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from segsync.services import connections
from segsync.services.context import open_context
from tests.browser.harness import Site, save_screenshot, sign_in


def open_add_autopilot(page: Page) -> None:
    """Admin > Connections > Add connection > Autopilot, by the links a user clicks."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Connections").click()
    expect(page.get_by_role("heading", name="Connections", level=1)).to_be_visible()
    page.get_by_role("link", name="Add connection").click()
    page.get_by_role("link", name="Autopilot").click()
    expect(page.get_by_role("heading", name="Add Autopilot connection")).to_be_visible()


def fill_connection(page: Page, site: Site, name: str, *, api_key: str, shared: bool) -> None:
    """Display name, who may use it, the API key, the simulator's base URL, I agree."""
    page.get_by_label("Display name").fill(name)
    sharing = "Administrators and contributors" if shared else "Administrators"
    page.get_by_role("radio", name=sharing, exact=True).check()
    page.get_by_label("API key", exact=True).fill(api_key)
    page.get_by_text("Advanced settings").click()
    page.get_by_label("Base URL").fill(site.simulator.base_url)
    page.get_by_role("checkbox", name="I agree").check()


def test_connect_reports_a_wrong_key_in_place_and_save_refuses_it(page: Page, site: Site) -> None:
    sign_in(page, "administrator")
    open_add_autopilot(page)
    fill_connection(page, site, "Wrong key", api_key="not-the-key", shared=False)
    page.get_by_role("button", name="Connect").click()
    result = page.get_by_role("status")
    expect(result).to_contain_text("✗")
    expect(result).to_contain_text(re.compile("rejected|401", re.IGNORECASE))
    expect(page).to_have_url(re.compile("/admin/connections/add/autopilot$"))
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text(re.compile("rejected|401", re.IGNORECASE))
    with open_context(site.settings) as ctx:
        assert "Wrong key" not in {c.name for c in connections.list_connections(ctx)}


def test_save_without_agreement_is_refused(page: Page, site: Site) -> None:
    sign_in(page, "administrator")
    open_add_autopilot(page)
    fill_connection(page, site, "No consent", api_key="simulator-key", shared=False)
    page.get_by_role("checkbox", name="I agree").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text(re.compile("agree", re.IGNORECASE))
    with open_context(site.settings) as ctx:
        assert "No consent" not in {c.name for c in connections.list_connections(ctx)}


def test_permissions_and_system_pages_show_users_and_schedule(page: Page, site: Site) -> None:
    sign_in(page, "administrator")
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Permissions").click()
    for role in ("administrator", "contributor", "viewer"):
        expect(page.get_by_text(f"{role}@example.com").first).to_be_visible()
    save_screenshot(page, "admin-permissions")
    nav.get_by_role("link", name="System").click()
    expect(page.get_by_role("heading", name="System", level=1)).to_be_visible()
    save_screenshot(page, "admin-system")


def test_contributor_and_viewer_have_no_admin_menu_and_are_refused(page: Page, site: Site) -> None:
    for role in ("contributor", "viewer"):
        page.context.clear_cookies()
        sign_in(page, role)
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Segments")).to_be_visible()
        expect(nav.get_by_role("link", name="Connections")).to_have_count(0)
        expect(nav.get_by_role("link", name="Permissions")).to_have_count(0)
        response = page.goto("/admin/connections")
        assert response is not None
        assert response.status == 403, role
