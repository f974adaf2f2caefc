"""The guard rails in a real browser (docs/exports.md "Blast-radius hold", "Undo a run"): a
contributor undoes a run from its page; the undo empties a list, so it is held and its page
shows why, with who would leave; Approve sends it and the list empties in Autopilot. A second
held run is dismissed and nothing is sent."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from segsync.services import connections, exports, runs
from segsync.services.context import open_context
from segsync.simulator import DEFAULT_API_KEY
from tests.browser.harness import SEGMENTS, Site, save_screenshot, sign_in

CONNECTION = "Guarded Autopilot"
EXPORT = "Guarded export"
PREFIX = "Guarded · "
DONE_MS = 30_000


def _members(site: Site, title: str) -> int:
    lists = {item["title"]: item["members"] for item in site.sim_lists()}
    return int(lists.get(title, 0))


def test_undo_is_held_then_approved_and_a_held_run_is_dismissed(page: Page, site: Site) -> None:
    segment = next(iter(SEGMENTS))
    title = f"{PREFIX}{segment}"
    with open_context(site.settings) as ctx:
        new = connections.NewConnection(
            CONNECTION,
            type="autopilot",
            api_key=DEFAULT_API_KEY,
            base_url=site.simulator.base_url,
            share_with_contributors=True,
            rate_limit=1000.0,  # the undo removes everyone, one request each
        )
        connection = connections.add_connection(ctx, new, agree=True)
        settings = exports.ExportSettings(
            EXPORT, connection.id, exports.DataMatching("Email"), [segment], list_prefix=PREFIX
        )
        exports.create_export(ctx, settings)
        first = runs.run_export(ctx, EXPORT)  # the site's worker executes it
    assert first.counts.added > 0
    filled = _members(site, title)
    assert filled == first.counts.added

    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, "contributor", then=f"/data/runs/{first.id}")
    page.get_by_role("button", name="Undo", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(r"^Undo \d+ of"))).to_be_visible()
    status = page.locator("#run-status")
    expect(status).to_have_text("Held", timeout=DONE_MS)
    page.reload()
    hold = page.locator("#hold")
    expect(hold).to_contain_text(f"would lose {filled:,} of its {filled:,} members (100%")
    expect(hold.get_by_text(re.compile("Who would leave"))).to_be_visible()
    assert _members(site, title) == filled  # nothing sent while held
    save_screenshot(page, "run-held")

    page.get_by_role("button", name="Approve").click()
    expect(status).to_have_text("Successful", timeout=DONE_MS)
    assert _members(site, title) == 0

    with open_context(site.settings) as ctx:
        again = runs.run_export(ctx, EXPORT)  # fills the list again: a first fill, not held
        assert again.counts.removed == 0
        undo = runs.queue_undo(ctx, again.id)
    page.goto(f"/data/runs/{undo.id}")
    expect(page.locator("#run-status")).to_have_text("Held", timeout=DONE_MS)
    page.reload()
    page.get_by_role("button", name="Dismiss").click()
    expect(page.locator("#run-status")).to_have_text("Canceled")
    expect(page.locator("#run-message")).to_contain_text("nothing was sent")
    assert _members(site, title) == filled
