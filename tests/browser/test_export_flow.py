"""The whole job in a real browser, step by step as in the reference product: an administrator
adds an Autopilot connection, adds a destination (an export) on it, saves — nothing runs —
then presses Run, watches the progress bar move, and the contacts arrive in Autopilot."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from segsync.domain.emails import normalise_email
from segsync.services import connections, runs
from segsync.services.context import open_context
from segsync.services.segments import members as segment_members
from segsync.simulator import DEFAULT_API_KEY
from tests.browser.harness import SEGMENTS, Site, save_screenshot, sign_in
from tests.browser.test_admin_pages import fill_connection, open_add_autopilot

CONNECTION = "Autopilot (marketing)"
EXPORT = "Newsletter audience"
RUN_TIMEOUT_MS = 30_000


def expected_people(site: Site, tmp: Path) -> dict[str, set[tuple[str, str]]]:
    """Valid emails (trimmed, lower-cased) of the members of both segments, with the first and
    last names profiles with that email carry — computed from the members, not the runner."""
    people: dict[str, set[tuple[str, str]]] = {}
    with open_context(site.settings) as ctx:
        for name in SEGMENTS:
            path = tmp / f"{name}.csv"
            segment_members.export_members_csv(ctx, name, path)
            with path.open(newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    email, _ = normalise_email(row["Email"] or None)
                    if email is not None:
                        people.setdefault(email, set()).add((row["FirstName"], row["LastName"]))
    return people


def add_connection_through_the_ui(page: Page, site: Site) -> None:
    open_add_autopilot(page)
    fill_connection(page, site, CONNECTION, api_key=DEFAULT_API_KEY, shared=True)
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_role("status")).to_contain_text("✓")
    add_me = page.get_by_role("checkbox", name="Add yourself as export user")
    add_me.check()
    save_screenshot(page, "connection-add")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile("/admin/connections$"))
    expect(page.get_by_role("link", name=CONNECTION, exact=True)).to_be_visible()
    save_screenshot(page, "connections")


def add_export_through_the_ui(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Exports").click()
    page.get_by_role("link", name="Add destination").click()
    expect(page.get_by_role("heading", name="Add destination")).to_be_visible()
    page.get_by_label("Export name").fill(EXPORT)
    page.get_by_role("radio", name=CONNECTION).check()
    page.get_by_label("Email").select_option("Email")
    page.get_by_label("First name").select_option("FirstName")
    page.get_by_label("Last name").select_option("LastName")
    for segment in SEGMENTS:
        page.get_by_role("checkbox", name=re.compile(f"^{re.escape(segment)}")).check()
    expect(page.locator("#selection")).to_contain_text("distinct profiles")
    save_screenshot(page, "export-add")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name=f"Export {EXPORT}")).to_be_visible()


def test_administrator_connects_adds_a_destination_and_runs_it(
    page: Page, site: Site, tmp_path: Path
) -> None:
    sign_in(page, "administrator")

    add_connection_through_the_ui(page, site)
    with open_context(site.settings) as ctx:
        saved = next(c for c in connections.list_connections(ctx) if c.name == CONNECTION)
        details = connections.show_connection(ctx, saved.id).to_dict()
    assert saved.who_may_use == "administrators and contributors"
    assert "administrator@example.com" in str(details)
    assert DEFAULT_API_KEY not in str(details)

    add_export_through_the_ui(page)
    expect(page.get_by_text("No run yet.")).to_be_visible()
    with open_context(site.settings) as ctx:
        assert runs.list_runs(ctx, export=EXPORT) == [], "saving must not start a run"
    save_screenshot(page, "export-details")

    people = expected_people(site, tmp_path)
    assert len(people) > 100, "the run needs several batches for its progress to move"
    site.gate.hold()  # Autopilot answers only when the test lets it
    try:
        page.get_by_role("button", name="Run", exact=True).click()
        expect(
            page.get_by_role("heading", name=re.compile(f"^Run \\d+ of {EXPORT}"))
        ).to_be_visible()
        bar = page.locator("#run-bar")
        partial = None
        for step in range(40):  # one request at a time, until the page shows some progress
            site.gate.allow(1)
            try:
                page.wait_for_function(
                    "() => document.getElementById('run-bar').value > 0", timeout=1_500
                )
            except PlaywrightTimeout:  # no batch acknowledged yet: let the next one through
                continue
            partial = float(bar.evaluate("b => b.value"))
            print(f"progress {partial}% after {step + 1} requests")
            break
        assert partial is not None, "the progress bar never moved"
        assert 0 < partial < 100, partial
        save_screenshot(page, "run-progress")
    finally:
        site.gate.open()

    status = page.locator("#run-status")
    expect(status).to_have_text("Successful", timeout=RUN_TIMEOUT_MS)
    expect(bar).to_have_js_property("value", 100)
    save_screenshot(page, "run-done")

    added = page.locator("[data-count='added']")
    expect(added).to_have_text(f"{len(people):,}")
    with open_context(site.settings) as ctx:
        (run,) = runs.list_runs(ctx, export=EXPORT)
    assert run.counts.added == len(people)
    assert run.counts.rejected == 0

    lists = {item["title"]: item["list_id"] for item in site.sim_lists()}
    ours = {lists[name] for name in SEGMENTS}
    sent = {
        contact["Email"]: contact for contact in site.sim_contacts() if ours & set(contact["lists"])
    }
    assert set(sent) == set(people)
    for email, names in people.items():
        if len(names) == 1:
            ((first, last),) = names
            assert sent[email].get("FirstName", "") == first, email
            assert sent[email].get("LastName", "") == last, email

    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Exports").click()
    expect(page.get_by_role("link", name=EXPORT, exact=True)).to_be_visible()
    save_screenshot(page, "exports")
    nav.get_by_role("link", name="Segments").click()
    for segment in SEGMENTS:
        expect(page.get_by_role("link", name=segment, exact=True)).to_be_visible()
    save_screenshot(page, "segments")
