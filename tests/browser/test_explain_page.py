"""Data › Explain a person in a real browser: a viewer finds the page in the navigation, types
an email of the sample profiles and reads why that person is not in "Gold customers" — the
condition that failed, with the profile's own value."""

from __future__ import annotations

import json
import re

from playwright.sync_api import Page, expect

from segsync.domain.emails import normalise_email
from segsync.services.context import open_context
from segsync.services.profiles.tables import catalog
from tests.browser.harness import Site, save_screenshot, sign_in


def someone_not_gold(site: Site) -> tuple[str, str, object]:
    """An email carried by exactly one profile, not Gold: (email, profile id, its tier), read
    from the profile table itself."""
    with open_context(site.settings) as ctx:
        cat = catalog(ctx)
        rows = ctx.profiles.table(cat.profile_table).to_pyarrow().to_pylist()
    by_email: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        email, _ = normalise_email(row["Email"])
        if email is not None:
            by_email.setdefault(email, []).append(row)
    for email, found in sorted(by_email.items()):
        if len(found) == 1 and found[0]["LoyaltyTier"] not in ("Gold", "gold", None):
            return email, str(found[0][cat.profile_key]), found[0]["LoyaltyTier"]
    raise AssertionError("the sample has nobody outside Gold")


def test_a_viewer_explains_why_someone_is_not_in_a_segment(page: Page, site: Site) -> None:
    email, profile_id, tier = someone_not_gold(site)
    sign_in(page, "viewer")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Explain a person").click()
    expect(page.get_by_role("heading", name="Explain a person")).to_be_visible()
    page.get_by_label("Email").fill(email.upper())
    page.get_by_role("button", name="Explain").click()

    expect(page).to_have_url(re.compile(r"/data/explain\?email="))
    expect(page.get_by_role("heading", name=email)).to_be_visible()
    profile = page.locator(f'[data-profile="{profile_id}"]')
    expect(profile.get_by_role("heading", name=f"Profile {profile_id}")).to_be_visible()
    gold = profile.locator('tr[data-segment="Gold customers"]')
    expect(gold).to_contain_text("No")
    expect(gold).to_contain_text(
        f'LoyaltyTier equals "Gold" failed (the profile\'s LoyaltyTier: {json.dumps(tier)})'
    )
    save_screenshot(page, "explain")


def test_an_unknown_email_says_so(page: Page, site: Site) -> None:
    sign_in(page, "viewer", then="/data/explain")
    page.get_by_label("Email").fill("nobody-at-all@example.org")
    page.get_by_role("button", name="Explain").click()
    expect(page.locator("#explain-summary")).to_contain_text("No profile carries this email")
