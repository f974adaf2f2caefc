"""The reference product's connection steps in a real browser, choosing Ortto: Admin >
Connections > Add connection > Ortto, display name, who may use it, API key, I agree, Connect,
add yourself as export user, Save — then an export on it, Run, and the audiences in the Ortto
simulator hold the segments' members."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from segsync.services import connections, runs
from segsync.services.context import open_context
from segsync.simulator import DEFAULT_API_KEY, RunningSimulator, SimulatorConfig, serve_in_thread
from tests.browser.harness import SEGMENTS, Site, sign_in

CONNECTION = "Ortto (marketing)"
EXPORT = "Ortto audiences"
RUN_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def ortto() -> Iterator[RunningSimulator]:
    with serve_in_thread(SimulatorConfig(rate_limit=0, seed=5, api="ortto")) as running:
        yield running


def test_administrator_adds_an_ortto_connection_and_an_export_that_lands(
    page: Page, site: Site, ortto: RunningSimulator
) -> None:
    sign_in(page, "administrator")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Connections").click()
    page.get_by_role("link", name="Add connection").click()
    page.get_by_role("link", name="Ortto").click()
    expect(page.get_by_role("heading", name="Add Ortto connection")).to_be_visible()
    expect(page.get_by_text("to Ortto, a third-party service")).to_be_visible()

    page.get_by_label("Display name").fill(CONNECTION)
    page.get_by_role("radio", name="Administrators", exact=True).check()
    page.get_by_label("API key", exact=True).fill(DEFAULT_API_KEY)
    region = page.get_by_label(re.compile("^Data region"))
    expect(region.locator("option")).to_have_text(["as the base URL says", "default", "eu", "au"])
    page.get_by_text("Advanced settings").click()
    page.get_by_role("textbox", name="Base URL").fill(ortto.base_url)
    page.get_by_role("checkbox", name="I agree").check()
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_role("status")).to_contain_text("✓")
    page.get_by_role("checkbox", name="Add yourself as export user").check()
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile("/admin/connections$"))
    expect(page.get_by_role("link", name=CONNECTION, exact=True)).to_be_visible()

    with open_context(site.settings) as ctx:
        saved = next(c for c in connections.list_connections(ctx) if c.name == CONNECTION)
        details = connections.show_connection(ctx, saved.id).to_dict()
    assert (details["type"], details["base_url"]) == ("ortto", ortto.base_url)
    assert "administrator@example.com" in str(details)
    assert DEFAULT_API_KEY not in str(details)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Exports").click()
    page.get_by_role("link", name="Add destination").click()
    page.get_by_label("Export name").fill(EXPORT)
    page.get_by_role("radio", name=CONNECTION).check()
    page.get_by_label("Email").select_option("Email")
    page.get_by_label("First name").select_option("FirstName")
    for segment in SEGMENTS:
        page.get_by_role("checkbox", name=re.compile(f"^{re.escape(segment)}")).check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name=f"Export {EXPORT}")).to_be_visible()
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#run-status")).to_have_text("Successful", timeout=RUN_TIMEOUT_MS)

    with open_context(site.settings) as ctx:
        (run,) = runs.list_runs(ctx, export=EXPORT)
    held = httpx.get(f"{ortto.root_url}/_sim/lists", params={"members": 1}, timeout=10).json()
    assert sorted(held) == sorted(SEGMENTS)
    assert run.counts.added == len({email for emails in held.values() for email in emails})
    assert run.counts.rejected == 0
