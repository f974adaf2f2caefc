"""Server-side web sessions and the shared sign-in limit (issue 14 §6).

A copied session cookie stops working at Sign out, at a password change and at a role change
or removal; the sign-in limit is counted in the metadata DB, so two web processes over one DB
share it, and its delay grows with each further failure. Clocks are injected (no sleeps)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from segsync.services import users
from segsync.settings import Settings
from segsync.web.app import create_app
from segsync.web.security import COOKIE_NAME, MAX_SIGN_IN_FAILURES
from tests.web.conftest import PASSWORD, Clock, WebHarness, csrf_of

ADMIN = "administrator@example.com"


def _copy(web: WebHarness, browser: TestClient) -> TestClient:
    """Another browser holding a copy of ``browser``'s session cookie (a stolen cookie)."""
    thief = web.client()
    thief.cookies.set(COOKIE_NAME, browser.cookies[COOKIE_NAME])
    return thief


def test_a_copied_cookie_stops_working_at_sign_out(web: WebHarness) -> None:
    browser = web.client_as("administrator")
    thief = _copy(web, browser)
    assert thief.get("/account").status_code == 200
    token = csrf_of(browser.get("/account").text)
    assert browser.post("/sign-out", data={"csrf_token": token}).status_code == 303
    assert thief.get("/account").status_code == 303
    assert thief.get("/admin/permissions").status_code == 303


def test_a_password_change_signs_out_every_other_browser(web: WebHarness) -> None:
    browser = web.client_as("viewer")
    thief = _copy(web, browser)
    other = web.client_as("viewer")
    fields = {"current_password": PASSWORD, "new_password": "another long password"}
    changed = browser.post("/account/password", data=web.form(browser, "/account", **fields))
    assert changed.status_code == 303
    assert browser.get("/account").status_code == 200  # the changer stays signed in
    assert thief.get("/account").status_code == 303
    assert other.get("/account").status_code == 303


def test_an_administrator_setting_a_password_or_removing_a_user_ends_their_sessions(
    web: WebHarness,
) -> None:
    browser = web.client_as("contributor")
    users.set_password(web.ctx, "contributor@example.com", "a brand new password")
    assert browser.get("/account").status_code == 303
    assert (
        web.sign_in(browser, "contributor@example.com", "a brand new password").status_code == 303
    )
    assert browser.get("/account").status_code == 200
    users.remove_user(web.ctx, "contributor@example.com")
    assert browser.get("/account").status_code == 303


def test_sessions_end_in_the_db_after_twelve_hours(web: WebHarness, clock: Clock) -> None:
    browser = web.client_as("viewer")
    clock.advance(hours=11, minutes=59)
    assert browser.get("/account").status_code == 200
    clock.advance(minutes=2)
    assert browser.get("/account").status_code == 303


@pytest.fixture
def second_process(web: WebHarness, web_settings: Settings, clock: Clock) -> Iterator[WebHarness]:
    """Another web app over the same data dir: what a second ``segsync serve`` process is."""
    other = WebHarness(create_app(web_settings, now=clock), clock, web_settings)
    yield other
    for client in other.clients:
        client.close()
    other.app.state.runtime.close()


def test_the_sign_in_limit_is_shared_by_processes_and_its_delay_grows(
    web: WebHarness, second_process: WebHarness, clock: Clock
) -> None:
    first, second = web.client(), second_process.client()
    for attempt in range(MAX_SIGN_IN_FAILURES):
        harness, browser = (web, first) if attempt % 2 else (second_process, second)
        assert harness.sign_in(browser, ADMIN, "wrong password!").status_code == 401
    for harness, browser in ((web, first), (second_process, second)):
        blocked = harness.sign_in(browser, ADMIN)  # even the right password
        assert blocked.status_code == 429
        assert 55 <= int(blocked.headers["retry-after"]) <= 60
    clock.advance(seconds=61)
    assert web.sign_in(first, ADMIN, "wrong password!").status_code == 401
    longer = second_process.sign_in(second, ADMIN)
    assert longer.status_code == 429
    assert 110 <= int(longer.headers["retry-after"]) <= 120  # doubled
    clock.advance(seconds=121)
    assert second_process.sign_in(second, ADMIN).status_code == 303
    # A success starts the count again.
    assert web.sign_in(web.client(), ADMIN, "wrong password!").status_code == 401
    assert web.sign_in(web.client(), ADMIN).status_code == 303
