"""Admin > Privacy (P4) in the browser: forget a person after a real run against the simulator
over loopback, the list of erasures (masked or digest), Retry pending, Lift a suppression.
Administrators only; the page never shows an email in clear."""

from __future__ import annotations

import httpx
import pytest

from segsync.services.privacy import erasure
from segsync.services.runs import queue, worker
from segsync.simulator import RunningSimulator
from tests.web.conftest import WebHarness
from tests.web.test_data_fixtures import data_web_fixture, release, sim_fixture  # noqa: F401

PAGE = "/admin/privacy"


def sim_emails(sim: RunningSimulator) -> set[str]:
    """The contacts the simulator holds, read over HTTP as any client would."""
    reply = httpx.get(f"{sim.root_url}/_sim/contacts")
    assert reply.status_code == 200, reply.text
    return {contact["Email"] for contact in reply.json()["contacts"]}


def run_news(web: WebHarness) -> None:
    """Queue and execute a real run of export "News" (Lisbon: ann@ and bob@)."""
    ctx = web.ctx
    try:
        run = queue.enqueue_run(ctx, "News").run
        claim = queue.claim_run(ctx, run.id)
        assert claim is not None
        worker.execute_claim(ctx, claim)
    finally:
        release(web, ctx)


def test_an_administrator_forgets_a_person_from_the_page(
    data_web: WebHarness, sim: RunningSimulator
) -> None:
    run_news(data_web)
    assert sim_emails(sim) == {"ann@example.com", "bob@example.com"}
    admin = data_web.client_as("administrator")
    page = admin.get(PAGE)
    assert page.status_code == 200
    assert 'href="/admin/privacy" aria-current="page"' in page.text
    assert "No erasures yet." in page.text
    assert 'data-confirm="Forget this person' in page.text

    done = admin.post(f"{PAGE}/forget", data=data_web.form(admin, PAGE, email="Ann@Example.com"))

    assert done.status_code == 200, done.text
    assert sim_emails(sim) == {"bob@example.com"}
    html = done.text
    assert "ann@example.com" not in html.lower()
    assert "Erasure of a•••@e•••.com" in html
    assert "erased from every connection" in html
    assert ">Shared</td>" in html
    assert "status-done" in html
    assert ">deleted<" in html
    assert "News" in html
    # The list: the connection's erasure keeps only a digest, plus the suppression marker.
    listed = admin.get(PAGE).text
    assert "ann@example.com" not in listed.lower()
    assert "sha256:" in listed
    assert "status-suppressed" in listed
    assert "every export (never sent again)" in listed
    assert [v.status for v in erasure.list_erasures(data_web.ctx)] == ["suppressed", "done"]


def test_invalid_email_is_shown_as_an_error_and_nothing_happens(data_web: WebHarness) -> None:
    admin = data_web.client_as("administrator")
    refused = admin.post(f"{PAGE}/forget", data=data_web.form(admin, PAGE, email="not an email"))
    assert refused.status_code == 422
    assert 'role="alert"' in refused.text
    assert "email" in refused.text
    assert erasure.list_erasures(data_web.ctx) == []


def test_retry_and_lift_from_the_page(data_web: WebHarness, sim: RunningSimulator) -> None:
    run_news(data_web)
    admin = data_web.client_as("administrator")
    admin.post(f"{PAGE}/forget", data=data_web.form(admin, PAGE, email="bob@example.com"))
    retried = admin.post(f"{PAGE}/retry", data=data_web.form(admin, PAGE))
    assert retried.status_code == 303
    assert "0 erasure(s) done now; 0 still pending." in admin.get(PAGE).text

    not_there = admin.post(f"{PAGE}/lift", data=data_web.form(admin, PAGE, email="cid@example.com"))
    assert not_there.status_code == 303
    assert "was not suppressed" in admin.get(PAGE).text
    lifted = admin.post(f"{PAGE}/lift", data=data_web.form(admin, PAGE, email="bob@example.com"))
    assert lifted.status_code == 303
    assert "Suppression lifted" in admin.get(PAGE).text
    statuses = [v.status for v in erasure.list_erasures(data_web.ctx)]
    assert statuses == ["done"]
    # bob may be exported again: the next run sends him back.
    run_news(data_web)
    assert sim_emails(sim) == {"ann@example.com", "bob@example.com"}


def test_the_page_refuses_a_post_without_the_csrf_token(data_web: WebHarness) -> None:
    admin = data_web.client_as("administrator")
    refused = admin.post(f"{PAGE}/forget", data={"email": "ann@example.com"})
    assert refused.status_code == 403
    assert erasure.list_erasures(data_web.ctx) == []


@pytest.mark.parametrize("role", ["contributor", "viewer"])
def test_only_administrators_use_the_privacy_page(web: WebHarness, role: str) -> None:
    browser = web.client_as(role)
    home = browser.get("/data/exports").text
    assert 'href="/admin/privacy"' not in home
    assert browser.get(PAGE).status_code == 403
    token = web.form(browser, "/data/exports")["csrf_token"]
    for action in ("forget", "lift"):
        response = browser.post(
            f"{PAGE}/{action}", data={"csrf_token": token, "email": "ann@example.com"}
        )
        assert response.status_code == 403, action
    assert browser.post(f"{PAGE}/retry", data={"csrf_token": token}).status_code == 403
    assert erasure.list_erasures(web.ctx) == []


def test_anonymous_visitors_are_sent_to_sign_in(web: WebHarness) -> None:
    response = web.client().get(PAGE)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/sign-in")
