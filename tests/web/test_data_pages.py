"""Every Data page renders for each role with only the buttons that role may use (R2–R4, I1),
and the server refuses a viewer's forged POSTs even with a valid CSRF token."""

from __future__ import annotations

import re

import pytest

from segsync.services import connections, exports, segments
from tests.web.conftest import WebHarness, csrf_of
from tests.web.test_data_fixtures import data_web_fixture, sim_fixture  # noqa: F401

ROLES = ("administrator", "contributor", "viewer")


def _ids(web: WebHarness) -> dict[str, int]:
    return {s.name: s.id for s in segments.list_segments(web.ctx)}


def _export_id(web: WebHarness, name: str) -> int:
    return exports.export_id(web.ctx, name)


def _buttons(html: str) -> set[str]:
    """Visible texts of buttons and button-like links (without the visually-hidden part)."""
    found = re.findall(r"<(?:button|a)[^>]*>([^<]+)", html)
    return {text.strip() for text in found if text.strip()}


@pytest.mark.slow  # every page for every role
def test_every_data_page_renders_for_every_role_with_the_right_buttons(
    data_web: WebHarness,
) -> None:
    seg = _ids(data_web)["Lisbon"]
    news, secret = _export_id(data_web, "News"), _export_id(data_web, "Secret")
    for role in ROLES:
        browser = data_web.client_as(role)
        pages = {
            "segments": browser.get("/data/segments"),
            "segment": browser.get(f"/data/segments/{seg}"),
            "exports": browser.get("/data/exports"),
            "news": browser.get(f"/data/exports/{news}"),
            "secret": browser.get(f"/data/exports/{secret}"),
        }
        for name, page in pages.items():
            assert page.status_code == 200, (role, name, page.text)
        writer = role != "viewer"
        assert ("New segment" in _buttons(pages["segments"].text)) is writer
        assert ("Refresh" in _buttons(pages["segment"].text)) is writer
        assert ("Delete" in _buttons(pages["segment"].text)) is writer
        assert ("Add destination" in _buttons(pages["exports"].text)) is writer
        assert ("Run all" in _buttons(pages["exports"].text)) is (role == "administrator")
        # News is on a shared connection: contributors edit and run it; viewers only view.
        assert ("Run" in _buttons(pages["news"].text)) is writer
        assert ("Edit" in _buttons(pages["news"].text)) is writer
        assert ("Remove" in _buttons(pages["news"].text)) is writer
        # Secret is on a connection not shared with contributors: view-only for them (R3).
        admin_only = role == "administrator"
        assert ("Run" in _buttons(pages["secret"].text)) is admin_only
        assert ("Edit" in _buttons(pages["secret"].text)) is admin_only
        assert ("Detach" in _buttons(pages["secret"].text)) is admin_only
        expected = "Edit" if admin_only else "View"
        assert f"Your permissions: {expected}" in pages["secret"].text
        for path in ("/data/segments/new", "/data/exports/new", f"/data/exports/{news}/edit"):
            assert browser.get(path).status_code == (200 if writer else 403), (role, path)
        assert browser.get(f"/data/exports/{secret}/edit").status_code == (
            200 if admin_only else 403
        )


def test_the_exports_list_shows_permissions_connection_and_no_connection(
    data_web: WebHarness,
) -> None:
    exports.detach_export(data_web.ctx, exports.export_id(data_web.ctx, "Secret"))
    page = data_web.client_as("contributor").get("/data/exports").text
    rows = {m.group(1): m.group(0) for m in re.finditer(r">(News|Secret)</a>.*?</tr>", page, re.S)}
    assert "Shared" in rows["News"]
    assert ">Edit<" in rows["News"]
    assert "No connection" in rows["Secret"]
    assert ">View<" in rows["Secret"]


VIEWER_REFUSED = (
    "/data/segments/new",
    "/data/segments/{seg}/refresh",
    "/data/segments/{seg}/delete",
    "/data/segments/{seg}/edit",
    "/data/segments/quick",
    "/data/exports/new",
    "/data/exports/{news}/edit",
    "/data/exports/{news}/run",
    "/data/exports/{news}/dry-run",
    "/data/exports/{news}/remove",
    "/data/exports/{news}/detach",
    "/data/exports/run-all",
)


def test_viewer_posts_are_refused_even_with_a_valid_csrf_token(data_web: WebHarness) -> None:
    seg = _ids(data_web)["Lisbon"]
    news = _export_id(data_web, "News")
    viewer = data_web.client_as("viewer")
    token = csrf_of(viewer.get("/data/exports").text)
    form = {
        "csrf_token": token,
        "definition": "name: X\nrules:\n  - conditions: {all: [{attribute: City, op: is_empty}]}",
        "attribute": "City",
        "pick": 'equals "Lisbon"',
        "name": "Forged",
        "connection": str(connections.connection_id(data_web.ctx, "Shared")),
        "email": "Email",
        "segments": "Lisbon",
    }
    for path in VIEWER_REFUSED:
        response = viewer.post(path.format(seg=seg, news=news), data=form)
        assert response.status_code == 403, (path, response.text)
    # Nothing changed.
    assert {s.name for s in segments.list_segments(data_web.ctx)} == {"Lisbon", "Porto"}
    assert {r.name for r in exports.list_exports(data_web.ctx)} == {"News", "Secret"}
    assert (
        exports.show_export(data_web.ctx, exports.export_id(data_web.ctx, "News")).connection_name
        == "Shared"
    )


def test_data_posts_without_the_csrf_token_are_refused(data_web: WebHarness) -> None:
    admin = data_web.client_as("administrator")
    response = admin.post("/data/exports/new", data={"name": "No token"})
    assert response.status_code == 403
    assert "CSRF" in response.text
