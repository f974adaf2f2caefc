"""The foundation works end to end: first run, sign in, a page, sign out (issue 6 §1, §3)."""

from __future__ import annotations

from tests.web.conftest import PASSWORD, WebHarness, csrf_of


def test_first_run_creates_the_administrator_who_then_signs_in(fresh_web: WebHarness) -> None:
    browser = fresh_web.client()
    assert browser.get("/").headers["location"] == "/sign-in"
    assert browser.get("/sign-in").headers["location"] == "/first-run"
    page = browser.get("/first-run")
    made = browser.post(
        "/first-run",
        data={
            "csrf_token": csrf_of(page.text),
            "email": "Founder@Example.com",
            "password": PASSWORD,
            "password_again": PASSWORD,
        },
    )
    assert made.status_code == 303
    assert made.headers["location"] == "/sign-in"
    # Once an administrator exists the first-run page is gone.
    assert browser.get("/first-run").headers["location"] == "/sign-in"
    signed_in = fresh_web.sign_in(browser, "founder@example.com")
    assert signed_in.status_code == 303
    account = browser.get("/account")
    assert account.status_code == 200
    assert "founder@example.com" in account.text
