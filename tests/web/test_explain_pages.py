"""Data > Explain a person and ``GET /api/v1/explain``: a viewer asks about the people of
tests/services/people_support.py (an export that really ran against the simulator over HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from segsync.simulator import RunningSimulator
from tests.services.people_support import build
from tests.services.runs_support import sim
from tests.web.conftest import WebHarness

__all__ = ["sim"]  # fixture


@pytest.fixture
def built(web: WebHarness, sim: RunningSimulator, tmp_path: Path) -> WebHarness:
    build(web.ctx, sim, tmp_path)
    return web


def test_a_viewer_searches_and_reads_the_explanation(built: WebHarness) -> None:
    viewer = built.client_as("viewer")
    empty = viewer.get("/data/explain")
    assert empty.status_code == 200
    assert 'name="email"' in empty.text
    assert '<option value="Newsletter"' in empty.text
    assert 'href="/data/explain"' in empty.text  # in the navigation

    page = viewer.get("/data/explain", params={"email": "dup@example.com"})
    assert page.status_code == 200, page.text
    assert 'data-profile="4"' in page.text
    assert 'data-profile="5"' in page.text
    assert 'data-export-status="duplicate"' in page.text
    assert "merged: profile 4 has the same email" in page.text
    assert 'data-list-state="known"' in page.text
    main = page.text.split("<main", 1)[1]
    assert "`segsync" not in main
    assert "<code>segsync" not in main


def test_the_first_failed_condition_and_the_removed_membership(built: WebHarness) -> None:
    viewer = built.client_as("viewer")
    page = viewer.get("/data/explain", params={"email": "p2@example.com", "export": "Newsletter"})
    assert page.status_code == 200, page.text
    assert (
        "rule 1: Grp in [&#34;a&#34;, &#34;ab&#34;] failed (the profile&#39;s Grp: empty)"
        in page.text
    )
    assert 'data-list-state="not on it"' in page.text


def test_a_forgotten_person_shows_nothing_but_the_erasure(built: WebHarness) -> None:
    page = built.client_as("viewer").get("/data/explain", params={"email": "p6@example.com"})
    assert page.status_code == 200
    assert "forgotten (erased)" in page.text
    assert "data-profile=" not in page.text
    assert "explain-erasures" in page.text


def test_a_wrong_export_is_said_on_the_page(built: WebHarness) -> None:
    page = built.client_as("viewer").get(
        "/data/explain", params={"email": "p1@example.com", "export": "Newsleter"}
    )
    assert page.status_code == 422
    assert "did you mean &#39;Newsletter&#39;?" in page.text


def test_the_api_answers_viewers_and_refuses_strangers(built: WebHarness) -> None:
    token = built.api_token("viewer")
    answer = built.api.get(
        "/api/v1/explain", params={"email": "Not-An-Email"}, headers=built.bearer(token)
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["email_problem"] == "invalid: no @"
    assert [p["profile_id"] for p in body["profiles"]] == ["3"]
    assert {t["action"] for t in body["runs"]} == {"invalid"}
    assert built.api.get("/api/v1/explain", params={"email": "x@example.com"}).status_code == 401
    blank = built.api.get("/api/v1/explain", params={"email": " "}, headers=built.bearer(token))
    assert blank.status_code == 422


def test_signed_out_visitors_are_sent_to_sign_in_and_a_wrong_export_is_404(
    built: WebHarness,
) -> None:
    stranger = built.client().get("/data/explain", params={"email": "p1@example.com"})
    assert stranger.status_code in (302, 303, 307)
    assert "/sign-in" in stranger.headers["location"]
    token = built.api_token("contributor")
    wrong = built.api.get(
        "/api/v1/explain",
        params={"email": "p1@example.com", "export": "Nope"},
        headers=built.bearer(token),
    )
    assert wrong.status_code == 404
    assert "export: no export named 'Nope'" in wrong.text
