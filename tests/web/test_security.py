"""Web security (issue 6 §3): sign-in, rate limit, CSRF, cookies, headers."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from segsync.services import users
from segsync.settings import Settings
from segsync.web.app import create_app
from segsync.web.security import COOKIE_NAME, MAX_SIGN_IN_FAILURES
from tests.web.conftest import PASSWORD, Clock, WebHarness, csrf_of


def test_sign_in_and_out(web: WebHarness) -> None:
    browser = web.client()
    assert browser.get("/account").headers["location"] == "/sign-in?next=/account"
    response = web.sign_in(browser, "administrator@example.com")
    assert response.status_code == 303
    assert browser.get("/account").status_code == 200
    out = browser.post("/sign-out", data={"csrf_token": csrf_of(browser.get("/account").text)})
    assert out.status_code == 303
    assert browser.get("/account").status_code == 303


def test_wrong_password_is_refused_with_one_message(web: WebHarness) -> None:
    browser = web.client()
    wrong = web.sign_in(browser, "administrator@example.com", "not the password!")
    unknown = web.sign_in(browser, "nobody@example.com", PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "the email or password is wrong" in response.text
    assert browser.get("/account").status_code == 303


def test_sign_in_is_rate_limited_per_email_and_address(web: WebHarness, clock: Clock) -> None:
    browser = web.client()
    for _ in range(MAX_SIGN_IN_FAILURES):
        assert (
            web.sign_in(browser, "administrator@example.com", "wrong password!").status_code == 401
        )
    # Even the right password is refused now, with a clear message and Retry-After.
    blocked = web.sign_in(browser, "administrator@example.com")
    assert blocked.status_code == 429
    assert "too many failed sign-ins" in blocked.text
    assert int(blocked.headers["retry-after"]) > 0
    # Another email from the same address is not affected.
    web.user("viewer")
    assert web.sign_in(web.client(), "viewer@example.com").status_code == 303
    clock.advance(minutes=16)
    assert web.sign_in(browser, "administrator@example.com").status_code == 303


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(web: WebHarness) -> None:
    admin = web.client_as("administrator")
    fields = {"email": "new@example.com", "role": "viewer", "password": PASSWORD}
    missing = admin.post("/admin/permissions/users", data=fields)
    wrong = admin.post("/admin/permissions/users", data={**fields, "csrf_token": "forged"})
    for response in (missing, wrong):
        assert response.status_code == 403
        assert "CSRF" in response.text
    assert "new@example.com" not in admin.get("/admin/permissions").text
    good = admin.post(
        "/admin/permissions/users", data=web.form(admin, "/admin/permissions", **fields)
    )
    assert good.status_code == 303
    assert "new@example.com" in admin.get("/admin/permissions").text


def test_sign_in_itself_needs_the_csrf_token(web: WebHarness) -> None:
    browser = web.client()
    browser.get("/sign-in")
    response = browser.post(
        "/sign-in", data={"email": "administrator@example.com", "password": PASSWORD}
    )
    assert response.status_code == 403


def test_security_headers_on_pages_api_and_static(web: WebHarness) -> None:
    browser = web.client()
    for response in (
        browser.get("/sign-in"),
        browser.get("/static/app.css"),
        browser.get("/api/v1/me"),
        browser.get("/no/such/page"),
    ):
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'self'" in csp
        assert "'unsafe-inline'" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"


def test_session_cookie_flags(web: WebHarness) -> None:
    browser = web.client()
    page = browser.get("/sign-in")
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    # The API never sets a cookie.
    assert "set-cookie" not in browser.get("/api/v1/me").headers


def test_secure_cookie_setting(tmp_path: Path, clock: Clock) -> None:
    settings = Settings(data_dir=tmp_path / "d", web_secure_cookies=True)
    app = create_app(settings, now=clock)
    try:
        with TestClient(app, base_url="https://testserver") as browser:
            assert "Secure" in browser.get("/first-run").headers["set-cookie"]
    finally:
        app.state.runtime.close()


def test_a_forged_session_cookie_is_ignored(web: WebHarness) -> None:
    browser = web.client_as("administrator")
    value = browser.cookies[COOKIE_NAME]
    payload, signature = value.rsplit(".", 1)
    browser.cookies.set(COOKIE_NAME, payload + "." + signature[::-1])
    assert browser.get("/account").status_code == 303


def test_sessions_expire(web: WebHarness, clock: Clock) -> None:
    browser = web.client_as("administrator")
    clock.advance(hours=13)
    assert browser.get("/account").status_code == 303


def test_a_removed_user_is_signed_out_and_a_demoted_one_loses_admin_pages(
    web: WebHarness,
) -> None:
    second = web.client_as("administrator", "second@example.com")
    assert second.get("/admin/permissions").status_code == 200
    users.set_role(web.ctx, "second@example.com", "viewer")
    # A role change ends the user's sessions (issue 14); signed in again, the new role holds.
    assert second.get("/admin/permissions").status_code == 303
    assert web.sign_in(second, "second@example.com").status_code == 303
    assert second.get("/admin/permissions").status_code == 403
    users.remove_user(web.ctx, "second@example.com")
    assert second.get("/account").status_code == 303


def test_next_never_redirects_off_site(web: WebHarness) -> None:
    browser = web.client()
    page = browser.get("/sign-in?next=//evil.example/x")
    response = browser.post(
        "/sign-in",
        data={
            "email": "administrator@example.com",
            "password": PASSWORD,
            "next": "//evil.example/x",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert response.headers["location"] == "/"
