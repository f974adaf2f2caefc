"""Every page at a phone's width (375×812): the page itself never scrolls sideways (wide tables
scroll inside their own box), and the whole navigation, Privacy included, can be reached."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Browser, Page, expect

from segsync.services import connections, exports, runs, segments
from segsync.services.context import open_context
from segsync.simulator import DEFAULT_API_KEY
from tests.browser.conftest import open_page
from tests.browser.harness import SEGMENTS, Site, save_screenshot, sign_in

PHONE = {"width": 375, "height": 812}
CONNECTION = "Phone test connection with a rather long name"
EXPORT = "Phone test export with a long name to wrap"

PAGES = [
    "/account",
    "/admin/connections",
    "/admin/connections/add",
    "/admin/connections/add/autopilot",
    "/admin/connections/{connection}",
    "/admin/connections/{connection}/edit",
    "/admin/connections/{connection}/remove",
    "/admin/permissions",
    "/admin/system",
    "/admin/notifications",
    "/admin/privacy",
    "/data/segments",
    "/data/segments/new",
    "/data/segments/quick",
    "/data/segments/{segment}",
    "/data/segments/{segment}?preview=live",
    "/data/segments/{segment}/edit",
    "/data/exports",
    "/data/exports/new",
    "/data/exports/{export}",
    "/data/exports/{export}/edit",
    "/data/exports/{export}/duplicate",
    "/data/exports/{export}/runs",
    "/data/runs/{run}",
    "/data/runs/{dry_run}",
    "/api/v1/docs",
]
"""Every HTML page a signed-in administrator can open (the first-run page exists only before
the first user; the sign-in page is checked signed out)."""


SHOTS = {"/data/exports": "phone-exports", "/admin/connections": "phone-connections"}
"""Pages saved as screenshots (test-artifacts/screenshots), to look at by eye."""


@pytest.fixture(scope="module")
def ids(site: Site) -> dict[str, int]:
    """A connection to the simulator, an export of both segments on it, a run and a dry run,
    made through the services in a thread of their own (Playwright's loop runs in this one)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_make_pages, site).result()


def _make_pages(site: Site) -> dict[str, int]:
    with open_context(site.settings) as ctx:
        connections.add_connection(
            ctx,
            connections.NewConnection(
                CONNECTION,
                type="autopilot",
                api_key=DEFAULT_API_KEY,
                base_url=site.simulator.base_url,
                rate_limit=1000.0,
            ),
            agree=True,
        )
        connection = connections.connection_id(ctx, CONNECTION)
        matching = exports.DataMatching("Email", "FirstName", "LastName")
        settings = exports.ExportSettings(EXPORT, connection, matching, list(SEGMENTS))
        export = exports.create_export(ctx, settings).id
        dry = runs.run_export(ctx, EXPORT, dry_run=True)
        real = runs.run_export(ctx, EXPORT)
        segment = segments.show_segment(ctx, next(iter(SEGMENTS))).segment.id
    return {
        "connection": connection,
        "export": export,
        "run": real.id,
        "dry_run": dry.id,
        "segment": segment,
    }


@pytest.fixture
def phone(browser: Browser, site: Site) -> Iterator[Page]:
    yield from open_page(browser, site, PHONE["width"], PHONE["height"])


def page_width(page: Page) -> int:
    width: int = page.evaluate("() => document.documentElement.scrollWidth")
    return width


def wider_elements(page: Page) -> list[str]:
    """The elements sticking out past the viewport, to say what broke the layout."""
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
            .filter(e => !e.closest('.table-wrap, pre'))
            .slice(0, 8)
            .map(e => `${e.tagName.toLowerCase()}.${e.className} (${Math.round(
                e.getBoundingClientRect().right)}px)`)"""
    )
    return found


def test_no_page_scrolls_sideways_at_375_px(phone: Page, ids: dict[str, int]) -> None:
    phone.goto("/sign-in")
    assert page_width(phone) <= PHONE["width"], wider_elements(phone)
    sign_in(phone, "administrator")
    too_wide = {}
    for template in PAGES:
        path = template.format(**ids)
        response = phone.goto(path)
        assert response is not None
        assert response.ok, f"{path}: {response.status}"
        width = page_width(phone)
        if width > PHONE["width"]:
            too_wide[path] = (width, wider_elements(phone))
        if path in SHOTS:
            save_screenshot(phone, SHOTS[path])
    assert not too_wide, "\n".join(f"{p}: {w}px {e}" for p, (w, e) in too_wide.items())


def test_the_whole_navigation_is_reachable_on_a_phone(phone: Page, site: Site) -> None:
    sign_in(phone, "administrator", then="/data/exports")
    nav = phone.get_by_role("navigation", name="Main")
    for name in ("Connections", "Permissions", "System", "Privacy", "Segments", "Exports"):
        link = nav.get_by_role("link", name=name, exact=True)
        expect(link).to_be_visible()
        box = link.bounding_box()
        assert box is not None
        assert box["x"] >= 0, (name, box)
        assert box["x"] + box["width"] <= PHONE["width"], (name, box)
    nav.get_by_role("link", name="Privacy", exact=True).click()
    expect(phone).to_have_url(f"{site.base_url}/admin/privacy")
    account = phone.get_by_role("button", name="Sign out")
    expect(account).to_be_visible()
