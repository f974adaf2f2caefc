"""Regression tests for the defects found by the security review of the web layer: every one
of them answered 500 (or logged an address in clear) before its fix."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from segsync.services import segments
from segsync.services.notifications.channels import SmtpChannel
from tests.services.test_notify_channels import NOTICE, Sink, smtp_sink  # noqa: F401
from tests.web.conftest import WebHarness, csrf_of
from tests.web.test_data_fixtures import data_web_fixture, sim_fixture  # noqa: F401

TOO_BIG = 2**64  # beyond SQLite's 64-bit integers


def _lenient(web: WebHarness, signed_in: TestClient | None = None) -> TestClient:
    """A client that returns a 500 as a response instead of raising the server's error."""
    client = TestClient(web.app, follow_redirects=False, raise_server_exceptions=False)
    web.clients.append(client)
    if signed_in is not None:
        client.cookies = signed_in.cookies
    return client


def test_a_session_cookie_with_a_non_ascii_signature_is_ignored_not_a_500(
    web: WebHarness,
) -> None:
    client = _lenient(web)
    page = client.get(
        "/sign-in", headers={"cookie": "segsync_session=e30.sig\xe9".encode("latin-1")}
    )
    assert page.status_code == 200
    assert 'name="csrf_token"' in page.text


@pytest.mark.parametrize("value", [str(TOO_BIG), "\u00b2"])
def test_marking_a_notification_read_with_an_out_of_range_id_is_a_422(
    web: WebHarness, value: str
) -> None:
    admin = web.client_as("administrator")
    client = _lenient(web, admin)
    token = csrf_of(admin.get("/admin/notifications").text)
    answer = client.post(
        "/admin/notifications/read", data={"csrf_token": token, "notification": value}
    )
    assert answer.status_code == 422
    assert "notification" in answer.text


def test_add_to_export_with_an_out_of_range_export_id_is_a_422(data_web: WebHarness) -> None:
    segment = next(s for s in segments.list_segments(data_web.ctx) if s.name == "Lisbon")
    contributor = data_web.client_as("contributor")
    client = _lenient(data_web, contributor)
    page = f"/data/segments/{segment.id}"
    token = csrf_of(contributor.get(page).text)
    answer = client.post(
        f"{page}/add-to-export", data={"csrf_token": token, "export_id": str(TOO_BIG)}
    )
    assert answer.status_code == 422


def test_runs_api_refuses_an_out_of_range_export_id_with_422(web: WebHarness) -> None:
    api = _lenient(web)
    headers = web.bearer(web.api_token("administrator"))
    started = api.post("/api/v1/runs", json={"export_id": TOO_BIG}, headers=headers)
    assert started.status_code == 422
    assert started.json()["code"] == "invalid_input"
    listed = api.get(f"/api/v1/runs?export_id={TOO_BIG}", headers=headers)
    assert listed.status_code == 422
    assert listed.json()["code"] == "invalid_input"


def test_a_partly_refused_notice_email_logs_the_refused_address_masked(
    smtp_sink: tuple[Sink, int],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink, port = smtp_sink
    sink.refuse = {"nobody@example.org"}
    channel = SmtpChannel(
        "127.0.0.1", port, "segsync@example.org", ["ops@example.org", "nobody@example.org"]
    )
    with caplog.at_level(logging.INFO, logger="segsync"):
        channel.send(NOTICE)
    assert len(sink.envelopes) == 1
    assert "refused some recipients" in caplog.text
    assert "nobody@example.org" not in caplog.text
