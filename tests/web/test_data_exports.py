"""Data > Exports in the browser and ``/api/v1/exports`` (E1–E8, C7, R2–R4)."""

from __future__ import annotations

import re

from segsync.services import connections, exports, runs
from tests.web.conftest import WebHarness
from tests.web.test_data_fixtures import (  # noqa: F401
    data_web_fixture,
    setup_profiles,
    sim_fixture,
)


def _names_in_order(html: str) -> list[str]:
    return re.findall(r'<td><a href="/data/exports/\d+">([^<]+)</a></td>', html)


def test_export_list_search_and_sort(data_web: WebHarness) -> None:
    browser = data_web.client_as("viewer")
    assert _names_in_order(browser.get("/data/exports").text) == ["News", "Secret"]
    assert _names_in_order(browser.get("/data/exports?sort=name&dir=desc").text) == [
        "Secret",
        "News",
    ]
    assert _names_in_order(browser.get("/data/exports?q=private").text) == ["Secret"]
    assert _names_in_order(browser.get("/data/exports?q=AUTOPILOT").text) == ["News", "Secret"]
    assert _names_in_order(browser.get("/data/exports?q=news").text) == ["News"]
    by_connection = browser.get("/data/exports?sort=connection&dir=asc").text
    assert _names_in_order(by_connection) == ["Secret", "News"]  # Private < Shared
    assert 'aria-sort="ascending"' in by_connection
    api, headers = data_web.api, data_web.bearer(data_web.api_token("viewer"))
    rows = api.get("/api/v1/exports?search=shared&sort=name", headers=headers).json()
    assert [(r["name"], r["your_permissions"]) for r in rows] == [("News", "view")]
    desc = api.get("/api/v1/exports?sort=name&descending=true", headers=headers).json()
    assert [r["name"] for r in desc] == ["Secret", "News"]
    assert api.get("/api/v1/exports?sort=nope", headers=headers).status_code == 422


def _cid(web: WebHarness, name: str) -> str:
    """The id of the connection named ``name``, as the form posts it."""
    return str(connections.connection_id(web.ctx, name))


def test_add_destination_via_the_form_saves_without_running(data_web: WebHarness) -> None:
    browser = data_web.client_as("administrator")
    form = data_web.form(
        browser,
        "/data/exports/new",
        name="Coastal",
        connection=_cid(data_web, "Shared"),
        email="Email",
        first_name="FirstName",
        last_name="LastName",
        map_target=["MailingCity", "custom:integer", ""],
        map_custom=["", "Points", ""],
        map_attribute=["City", "Score", ""],
        segments=["Lisbon", "Porto"],
        removal="add-only",
        schedule_kind="daily",
        schedule_at="06:30",
        schedule_tz="Europe/Lisbon",
        schedule_hours="",
    )
    saved = browser.post("/data/exports/new", data=form)
    assert saved.status_code == 303, saved.text
    details = exports.show_export(data_web.ctx, exports.export_id(data_web.ctx, "Coastal"))
    assert saved.headers["location"] == f"/data/exports/{details.id}"
    assert [(m.field, m.attribute) for m in details.mapping] == [
        ("Email", "Email"),
        ("FirstName", "FirstName"),
        ("LastName", "LastName"),
        ("MailingCity", "City"),
        ("custom:integer:Points", "Score"),
    ]
    assert [s.name for s in details.segments] == ["Lisbon", "Porto"]
    assert details.removal_policy == "add-only"
    assert details.schedule_description == "Daily at 06:30 (Europe/Lisbon)"
    assert runs.list_runs(data_web.ctx, export="Coastal") == []  # E4: saving never runs
    page = browser.get(f"/data/exports/{details.id}").text
    assert "No run yet." in page
    # Edit shows the saved values and saves changes.
    edit = browser.get(f"/data/exports/{details.id}/edit").text
    assert 'value="custom:integer" selected' in edit
    assert 'value="Points"' in edit
    changed = browser.post(
        f"/data/exports/{details.id}/edit",
        data={**form, "csrf_token": form["csrf_token"], "segments": ["Porto"],
              "schedule_kind": "off"},
    )  # fmt: skip
    assert changed.status_code == 303, changed.text
    after = exports.show_export(data_web.ctx, exports.export_id(data_web.ctx, "Coastal"))
    assert [s.name for s in after.segments] == ["Porto"]
    assert after.schedule_description == "Off (manual runs only)"


def test_the_form_shows_errors_and_keeps_the_values(data_web: WebHarness) -> None:
    browser = data_web.client_as("administrator")
    page = browser.post(
        "/data/exports/new",
        data=data_web.form(browser, "/data/exports/new", name="Broken",
                           connection=_cid(data_web, "Shared"),
                           email="Email", segments=[]),
    )  # fmt: skip
    assert page.status_code == 422
    assert "choose at least one segment" in page.text
    assert 'value="Broken"' in page.text


def test_contributor_cannot_pick_an_unshared_connection(data_web: WebHarness) -> None:
    browser = data_web.client_as("contributor")
    page = browser.get("/data/exports/new").text
    assert f'name="connection" value="{_cid(data_web, "Shared")}"' in page
    assert f'name="connection" value="{_cid(data_web, "Private")}"' not in page
    forged = browser.post(
        "/data/exports/new",
        data=data_web.form(browser, "/data/exports/new", name="Sneaky",
                           connection=_cid(data_web, "Private"),
                           email="Email", segments=["Lisbon"]),
    )  # fmt: skip
    assert forged.status_code == 403
    assert "Sneaky" not in {r.name for r in exports.list_exports(data_web.ctx)}


def test_no_connection_available_is_said_plainly(web: WebHarness) -> None:
    setup_profiles(web)
    page = web.client_as("contributor").get("/data/exports/new")
    assert page.status_code == 200
    assert "No connection available" in page.text
    assert "Ask an administrator" in page.text


def test_selection_warns_above_the_contract_limit(data_web: WebHarness) -> None:
    shared = _cid(data_web, "Shared")
    tighter = connections.ConnectionEdit(contract_limit=2)
    connections.edit_connection(data_web.ctx, int(shared), tighter)
    browser = data_web.client_as("contributor")
    result = browser.get(f"/data/exports/selection?connection_id={shared}&segment=Lisbon").json()
    assert result["members"] == {"Lisbon": 3}
    assert result["total"] == 3
    assert result["over_limit"] is True
    assert "more than the contract limit" in result["warnings"][0]
    assert "of 2" not in result["warnings"][0]  # contributors never see settings (R5)
    fits = browser.get(f"/data/exports/selection?connection_id={shared}&segment=Porto").json()
    assert fits["over_limit"] is False


def test_selection_with_the_email_attribute_counts_what_a_run_counts(data_web: WebHarness) -> None:
    shared = _cid(data_web, "Shared")
    tighter = connections.ConnectionEdit(contract_limit=2)
    connections.edit_connection(data_web.ctx, int(shared), tighter)
    browser = data_web.client_as("administrator")
    url = f"/data/exports/selection?connection_id={shared}&segment=Lisbon"

    by_email = browser.get(f"{url}&email=Email").json()
    by_city = browser.get(f"{url}&email=City").json()

    # 3 Lisbon profiles, one without a valid email: a run would send 2, within the limit.
    assert by_email["total"] == 3
    assert by_email["over_limit"] is False
    assert by_email["warnings"] == []
    (warning,) = by_city["warnings"]
    assert "have no valid email in attribute 'City'" in warning


def test_duplicate_detach_attach_and_remove_in_the_browser(data_web: WebHarness) -> None:
    browser = data_web.client_as("administrator")
    news = exports.export_id(data_web.ctx, "News")
    page = f"/data/exports/{news}"
    duplicate = browser.get(f"{page}/duplicate").text
    assert 'value="Copy of News"' in duplicate
    assert 'value="Lisbon" checked' in duplicate
    detached = browser.post(f"{page}/detach", data=data_web.form(browser, page))
    assert detached.status_code == 303
    view = browser.get(page).text
    assert "No connection" in view
    assert f'{page}/run"' not in view
    assert "Attach to" in view
    private = _cid(data_web, "Private")
    attached = browser.post(f"{page}/attach", data=data_web.form(browser, page,
                                                                 connection=private))  # fmt: skip
    assert attached.status_code == 303
    assert (
        exports.get_export(data_web.ctx, exports.export_id(data_web.ctx, "News")).connection_name
        == "Private"
    )
    removed = browser.post(f"{page}/remove", data=data_web.form(browser, page))
    assert removed.status_code == 303
    assert "News" not in {r.name for r in exports.list_exports(data_web.ctx)}


def test_exports_api_create_update_duplicate_detach_attach_delete(data_web: WebHarness) -> None:
    api, headers = data_web.api, data_web.bearer(data_web.api_token("contributor"))
    body = {
        "name": "API export",
        "connection": "Shared",
        "email": "Email",
        "maps": [{"field": "custom:string:Town", "attribute": "City"}],
        "segments": ["Lisbon"],
        "schedule": {"kind": "weekly", "days": ["mon", "thu"], "at": "07:00"},
    }
    made = api.post("/api/v1/exports", json=body, headers=headers)
    assert made.status_code == 201, made.text
    created = made.json()
    eid = created["id"]
    assert created["segments"][0]["members"] == 3
    assert created["schedule_description"] == "Weekly on Mon, Thu at 07:00 (UTC)"
    assert runs.list_runs(data_web.ctx, export="API export") == []
    private = api.post("/api/v1/exports", json={**body, "name": "P", "connection": "Private"},
                       headers=headers)  # fmt: skip
    assert private.status_code == 403
    patched = api.patch(f"/api/v1/exports/{eid}", json={"segments": ["Lisbon", "Porto"]},
                        headers=headers)  # fmt: skip
    assert patched.status_code == 200, patched.text
    assert [s["name"] for s in patched.json()["segments"]] == ["Lisbon", "Porto"]
    copy = api.post(f"/api/v1/exports/{eid}/duplicate", json={"name": "API copy"},
                    headers=headers)  # fmt: skip
    assert copy.status_code == 201
    assert copy.json()["mapping"][1] == {"field": "custom:string:Town", "attribute": "City"}
    detached = api.post(f"/api/v1/exports/{eid}/detach", headers=headers).json()
    assert detached["connection"] == "No connection"
    # A detached export is the administrators' (ours): contributors cannot re-attach it.
    refused = api.post(f"/api/v1/exports/{eid}/attach", json={"connection": "Shared"},
                       headers=headers)  # fmt: skip
    assert refused.status_code == 403
    admin = data_web.bearer(data_web.api_token("administrator"))
    attached = api.post(f"/api/v1/exports/{eid}/attach", json={"connection": "Shared"},
                        headers=admin)  # fmt: skip
    assert attached.json()["connection"] == "Shared"
    assert api.delete(f"/api/v1/exports/{eid}", headers=headers).status_code == 204
    assert api.get(f"/api/v1/exports/{eid}", headers=headers).status_code == 404
    secret = exports.export_id(data_web.ctx, "Secret")
    assert api.delete(f"/api/v1/exports/{secret}", headers=headers).status_code == 403
