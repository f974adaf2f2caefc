"""What pages read from the profiles after they open, in a real browser: a segment's member
preview, and the export form's live selection total."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from segsync.services import connections, segments
from segsync.services.context import open_context
from segsync.services.exports import forms as export_forms
from segsync.services.segments import members as segment_members
from segsync.simulator import DEFAULT_API_KEY
from tests.browser.harness import Site, sign_in

GOLD = "Gold customers"


def test_the_segment_page_reads_its_preview_after_it_opens(page: Page, site: Site) -> None:
    with open_context(site.settings) as ctx:
        segment_id = next(s.id for s in segments.list_segments(ctx) if s.name == GOLD)
        first = segment_members.preview_segment(ctx, GOLD, limit=1)
    sign_in(page, "viewer")
    page.goto(f"/data/segments/{segment_id}")
    table = page.locator("#preview-body table")
    expect(table).to_be_visible()
    expect(table.locator("thead th").first).to_have_text(first.key)
    expect(table.locator("tbody tr").first.locator("td").first).to_have_text(
        str(first.rows[0][first.key])
    )
    expect(page.locator("#preview-note")).to_have_count(0)


def test_the_export_form_counts_the_selection_live_once_open(page: Page, site: Site) -> None:
    with open_context(site.settings) as ctx:
        live = export_forms.selection_check(ctx, None, [GOLD])
        shared = connections.NewConnection(
            "Live reads",
            type="autopilot",
            api_key=DEFAULT_API_KEY,
            base_url=site.simulator.base_url,
            share_with_contributors=True,
        )
        connections.add_connection(ctx, shared, agree=True)
    assert live.total is not None
    sign_in(page, "contributor")
    page.goto(f"/data/exports/new?segment={GOLD}")
    selection = page.locator("#selection")
    expect(selection).to_have_text(f"Selected: {live.total:,} distinct profiles.")
