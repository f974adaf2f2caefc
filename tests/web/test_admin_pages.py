"""Admin pages (issue 6 §1): Connections, Permissions, System, notifications; roles."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from segsync.services import connections, users
from segsync.simulator import RunningSimulator, Simulator, SimulatorConfig, serve_in_thread
from tests.web.conftest import PASSWORD, WebHarness, csrf_of

KEY = "sk-web-4f1c9e2ab7d05536"
ADMIN_PAGES = [
    "/admin/connections",
    "/admin/connections/add",
    "/admin/connections/add/autopilot",
    "/admin/permissions",
    "/admin/system",
    "/admin/notifications",
]


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with serve_in_thread(Simulator(SimulatorConfig(api_keys=[KEY], rate_limit=0))) as running:
        yield running


def add_connection_form(web: WebHarness, admin, sim: RunningSimulator, **fields):  # type: ignore[no-untyped-def]
    values = {
        "name": "Autopilot EU",
        "share": "contributors",
        "api_key": KEY,
        "base_url": sim.base_url,
        "agree": "true",
        "add_me": "true",
    }
    values.update(fields)
    return admin.post(
        "/admin/connections/add/autopilot",
        data=web.form(admin, "/admin/connections/add/autopilot", **values),
    )


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_every_admin_page_renders_for_an_administrator(web: WebHarness, path: str) -> None:
    admin = web.client_as("administrator")
    response = admin.get(path)
    assert response.status_code == 200, response.text
    assert "<h1>" in response.text


@pytest.mark.parametrize("role", ["viewer", "contributor"])
def test_others_are_refused_admin_pages_and_actions(web: WebHarness, role: str) -> None:
    browser = web.client_as(role)
    for path in ADMIN_PAGES:
        assert browser.get(path).status_code == 403, path
    token = csrf_of(browser.get("/account").text)
    posts = {
        "/admin/permissions/users": {"email": "x@example.com", "role": "administrator"},
        "/admin/permissions/users/role": {"email": f"{role}@example.com", "role": "administrator"},
        "/admin/notifications/read": {},
    }
    for path, fields in posts.items():
        response = browser.post(path, data={"csrf_token": token, "password": PASSWORD, **fields})
        assert response.status_code == 403, (path, response.status_code)
    check = browser.post(
        "/admin/connections/check", json={"api_key": "k"}, headers={"X-CSRF-Token": token}
    )
    assert check.status_code == 403
    roles = {u.email: u.role.value for u in users.list_users(web.ctx)}
    assert roles[f"{role}@example.com"] == role
    assert "x@example.com" not in roles


@pytest.mark.parametrize("role", ["viewer", "contributor"])
def test_others_see_no_admin_navigation_or_buttons(web: WebHarness, role: str) -> None:
    page = web.client_as(role).get("/account")
    assert page.status_code == 200
    for admin_link in ('href="/admin/connections"', 'href="/admin/permissions"', "Add connection"):
        assert admin_link not in page.text
    admin_page = web.client_as("administrator").get("/account").text
    assert 'href="/admin/connections"' in admin_page


def test_add_connection_against_the_simulator(web: WebHarness, sim: RunningSimulator) -> None:
    admin = web.client_as("administrator")
    form = admin.get("/admin/connections/add/autopilot").text
    assert connections.consent_statement("autopilot") in form
    assert 'type="password"' in form
    saved = add_connection_form(web, admin, sim)
    assert saved.status_code == 303, saved.text
    listing = admin.get("/admin/connections")
    assert "Autopilot EU" in listing.text
    assert "Administrators and contributors" in listing.text
    connection_id = re.search(r'href="/admin/connections/(\d+)"', listing.text).group(1)  # type: ignore[union-attr]
    details = admin.get(f"/admin/connections/{connection_id}").text
    assert "••••" in details  # the masked hint only
    assert "administrator@example.com" in details  # added as export user
    for path in (
        "/admin/connections",
        f"/admin/connections/{connection_id}",
        f"/admin/connections/{connection_id}/edit",
        "/admin/system",
    ):
        assert KEY not in admin.get(path).text


def test_connection_is_not_saved_without_agreement_or_with_a_wrong_key(
    web: WebHarness, sim: RunningSimulator
) -> None:
    admin = web.client_as("administrator")
    no_agree = add_connection_form(web, admin, sim, agree="")
    assert no_agree.status_code == 422
    assert "agree" in no_agree.text
    assert KEY not in no_agree.text  # the form comes back without the key
    wrong = add_connection_form(web, admin, sim, api_key="sk-wrong-000000000")
    assert wrong.status_code == 422
    assert "nothing was saved" in wrong.text
    assert connections.list_connections(web.ctx) == []


def test_connect_checks_the_key_in_place_without_saving(
    web: WebHarness, sim: RunningSimulator
) -> None:
    admin = web.client_as("administrator")
    token = csrf_of(admin.get("/admin/connections/add/autopilot").text)
    body = {"api_key": KEY, "base_url": sim.base_url}
    good = admin.post("/admin/connections/check", json=body, headers={"X-CSRF-Token": token})
    assert good.json()["ok"] is True
    bad = admin.post(
        "/admin/connections/check",
        json={**body, "api_key": "sk-nope-1234567890"},
        headers={"X-CSRF-Token": token},
    )
    assert bad.json()["ok"] is False
    assert bad.json()["health"] == "key_rejected"
    assert KEY not in good.text
    assert connections.list_connections(web.ctx) == []
    # Without the CSRF header: refused.
    assert admin.post("/admin/connections/check", json=body).status_code == 403


def test_remove_is_refused_while_exports_use_it_offering_remove_or_detach(
    web: WebHarness, sim: RunningSimulator
) -> None:
    from tests.services.test_connections import add_export

    admin = web.client_as("administrator")
    assert add_connection_form(web, admin, sim).status_code == 303
    [row] = connections.list_connections(web.ctx)
    weekly = add_export(web.ctx, "Weekly newsletter", row.id)
    vip = add_export(web.ctx, "VIP offers", row.id)
    remove_page = f"/admin/connections/{row.id}/remove"
    refused = admin.post(remove_page, data=web.form(admin, remove_page))
    assert refused.status_code == 303
    page = admin.get(remove_page).text
    assert "is used by 2 export(s)" in page
    assert "Weekly newsletter" in page
    assert "VIP offers" in page
    assert page.count("/exports/detach") == 2
    assert page.count("/exports/remove") == 2
    detach = admin.post(
        f"/admin/connections/{row.id}/exports/detach",
        data=web.form(admin, remove_page, export_id=str(weekly)),
    )
    assert detach.status_code == 303
    removed = admin.post(
        f"/admin/connections/{row.id}/exports/remove",
        data=web.form(admin, remove_page, export_id=str(vip)),
    )
    assert removed.status_code == 303
    assert admin.post(remove_page, data=web.form(admin, remove_page)).status_code == 303
    assert connections.list_connections(web.ctx) == []


def test_permissions_page_manages_users_and_roles(web: WebHarness) -> None:
    admin = web.client_as("administrator")
    page = "/admin/permissions"
    added = admin.post(
        "/admin/permissions/users",
        data=web.form(admin, page, email="Ann@Example.com", role="contributor", password=PASSWORD),
    )
    assert added.status_code == 303
    short = admin.post(
        "/admin/permissions/users",
        data=web.form(admin, page, email="bob@example.com", role="viewer", password="short"),
    )
    assert short.status_code == 422
    assert "at least 12" in short.text
    admin.post(
        "/admin/permissions/users/role",
        data=web.form(admin, page, email="ann@example.com", role="viewer"),
    )
    roles = {u.email: u.role.value for u in users.list_users(web.ctx)}
    assert roles["ann@example.com"] == "viewer"
    last = admin.post(
        "/admin/permissions/users/remove",
        data=web.form(admin, page, email="administrator@example.com"),
    )
    assert last.status_code == 303
    assert "last administrator" in admin.get(page).text
    admin.post(
        "/admin/permissions/users/remove", data=web.form(admin, page, email="ann@example.com")
    )
    assert "ann@example.com" not in {u.email for u in users.list_users(web.ctx)}


def test_api_tokens_page_shows_a_new_token_once(web: WebHarness) -> None:
    viewer = web.client_as("viewer")
    created = viewer.post("/account/tokens", data=web.form(viewer, "/account", name="script"))
    assert created.status_code == 200
    token = re.search(r'id="new-token">(ssk_[^<]+)<', created.text).group(1)  # type: ignore[union-attr]
    assert users.authenticate_token(web.ctx, token).email == "viewer@example.com"
    again = viewer.get("/account").text
    assert token not in again
    assert "script" in again
    [record] = users.list_tokens(
        web.app.state.runtime.context(users.authenticate_token(web.ctx, token))
    )
    revoke = viewer.post(f"/account/tokens/{record.id}/revoke", data=web.form(viewer, "/account"))
    assert revoke.status_code == 303
    with pytest.raises(Exception, match="revoked"):
        users.authenticate_token(web.ctx, token)


def test_system_schedule_form_sets_and_switches_off(web: WebHarness) -> None:
    from segsync.services.runs import schedule

    admin = web.client_as("administrator")
    fields = {
        "enabled": "on",
        "frequency": "weekly",
        "weekdays": ["mon", "thu"],
        "times": ["06:00", "18:30", "", ""],
        "tz": "Europe/Lisbon",
    }
    saved = admin.post("/admin/system/schedule", data=web.form(admin, "/admin/system", **fields))
    assert saved.status_code == 303, saved.text
    current = schedule.show_schedule(web.ctx).schedule
    assert current.enabled
    assert {d.value for d in current.weekdays} == {"mon", "thu"}
    assert [t.strftime("%H:%M") for t in current.times] == ["06:00", "18:30"]
    page = admin.get("/admin/system").text
    assert 'value="thu" checked' in page
    assert 'value="18:30"' in page
    bad = admin.post(
        "/admin/system/schedule",
        data=web.form(admin, "/admin/system", **{**fields, "tz": "Mars/Olympus"}),
    )
    assert bad.status_code == 422
    assert "Mars/Olympus" in bad.text
    off = admin.post("/admin/system/schedule", data=web.form(admin, "/admin/system", enabled="off"))
    assert off.status_code == 303
    assert not schedule.show_schedule(web.ctx).schedule.enabled


def test_administrators_see_failed_export_notifications_and_mark_them_read(
    web: WebHarness,
) -> None:
    from segsync.storage.repositories.notifications import NotificationRepository

    with web.ctx.db.session() as session:
        NotificationRepository(session).add(
            at=web.clock(),
            kind="failed",
            export_id=None,
            export_name="Weekly newsletter",
            run_id=None,
            message="export 'Weekly newsletter' failed: the Autopilot API key was rejected",
            delivered={},
        )
    admin = web.client_as("administrator")
    banner = admin.get("/account").text
    assert "1 unread notification" in banner
    assert "the Autopilot API key was rejected" in banner
    viewer_page = web.client_as("viewer").get("/account").text
    assert "unread notification" not in viewer_page
    read = admin.post(
        "/admin/notifications/read",
        data=web.form(admin, "/admin/notifications", notification="all"),
    )
    assert read.status_code == 303
    assert "unread notification" not in admin.get("/account").text
    assert "Weekly newsletter" in admin.get("/admin/notifications").text
