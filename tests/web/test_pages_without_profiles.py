"""Pages and API reads that never wait for the profile engine (issue 11, "History at scale").

A segment's page, an export's page and ``GET /api/v1/exports/{id}`` show what the metadata DB
holds (each segment's count from its last refresh); the live figures are read on request:
``?preview=live`` and ``preview.json``, ``?counts=live``. Proved by making every connection to
the profile engine fail while the pages open. The export form shows the stored counts and
counts nothing itself (its script asks ``/data/exports/selection``)."""

from __future__ import annotations

from typing import Any

import pytest

from segsync.errors import InputError
from segsync.profiles.engine import ProfileEngine
from segsync.segments import evaluate
from segsync.services import connections, exports, segments
from segsync.services.exports import forms as export_forms
from segsync.services.segments import members as segment_members
from tests.web.conftest import WebHarness
from tests.web.test_data_fixtures import data_web_fixture, sim_fixture  # noqa: F401


def _segment_id(web: WebHarness, name: str) -> int:
    return next(s.id for s in segments.list_segments(web.ctx) if s.name == name)


@pytest.fixture
def refreshed(data_web: WebHarness) -> WebHarness:
    """Lisbon (3 members) and Porto (1) refreshed, so they have stored counts."""
    segments.refresh_segments(data_web.ctx, ["Lisbon", "Porto"])
    data_web.app.state.runtime.release(data_web.ctx)
    return data_web


def _refuse_profiles(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> ProfileEngine:
        raise AssertionError("this page must not open the profile engine")

    monkeypatch.setattr(ProfileEngine, "connect", refuse)


def test_pages_open_without_the_profile_engine(
    refreshed: WebHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = refreshed.client_as("viewer")
    _refuse_profiles(monkeypatch)
    news = exports.export_id(refreshed.ctx, "News")
    lisbon = _segment_id(refreshed, "Lisbon")
    for page in (f"/data/segments/{lisbon}", f"/data/exports/{news}", "/data/exports"):
        reply = browser.get(page)
        assert reply.status_code == 200, (page, reply.text[:300])
    api = refreshed.api.get(
        f"/api/v1/exports/{news}", headers=refreshed.bearer(refreshed.api_token("viewer"))
    )
    assert api.status_code == 200, api.text
    body = api.json()
    assert body["live_counts"] is False
    [line] = body["segments"]
    assert line["members"] == 3
    assert line["counted_at"] is not None  # when the refresh counted them
    assert body["distinct_total"] == 3  # one segment: its count is the total


def test_the_api_counts_live_when_asked(refreshed: WebHarness) -> None:
    headers = refreshed.bearer(refreshed.api_token("contributor"))
    news = exports.export_id(refreshed.ctx, "News")
    exports.edit_export(
        refreshed.ctx, news, exports.ExportEdit(segments=["Lisbon", "Porto"])
    )  # two segments: only a live count knows the distinct total
    stored = refreshed.api.get(f"/api/v1/exports/{news}", headers=headers).json()
    assert [s["members"] for s in stored["segments"]] == [3, 1]
    assert stored["distinct_total"] is None
    live = refreshed.api.get(f"/api/v1/exports/{news}?counts=live", headers=headers).json()
    assert live["live_counts"] is True
    assert [s["counted_at"] for s in live["segments"]] == [None, None]
    assert live["distinct_total"] == 4
    wrong = refreshed.api.get(f"/api/v1/exports/{news}?counts=now", headers=headers)
    assert wrong.status_code == 422


def test_the_preview_says_why_it_cannot_be_read(
    refreshed: WebHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise InputError("unknown profile attribute 'City'")

    monkeypatch.setattr(segment_members, "preview_segment", broken)
    browser = refreshed.client_as("viewer")
    page = f"/data/segments/{_segment_id(refreshed, 'Lisbon')}"
    reply = browser.get(f"{page}/preview.json")
    assert reply.status_code == 422
    assert reply.json() == {"error": "unknown profile attribute 'City'"}
    assert "unknown profile attribute" in browser.get(f"{page}?preview=live").text


def test_the_export_form_shows_stored_counts_and_counts_nothing(
    refreshed: WebHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> int:
        raise AssertionError("the form must not count members")

    monkeypatch.setattr(evaluate, "count", refuse)  # the form imports it when it counts
    news = exports.export_id(refreshed.ctx, "News")
    form = refreshed.client_as("contributor").get(f"/data/exports/{news}/edit")
    assert form.status_code == 200, form.text[:300]
    assert "<strong>3</strong> distinct profiles, as of the segments' last refreshes" in form.text


def test_a_stored_selection_check_is_a_lower_bound(refreshed: WebHarness) -> None:
    ctx = refreshed.ctx
    shared = connections.connection_id(ctx, "Shared")
    connections.edit_connection(ctx, shared, connections.ConnectionEdit(contract_limit=2))
    both = export_forms.selection_check(ctx, shared, ["Lisbon", "Porto", "Nope"], live=False)
    assert both.live is False
    assert both.members == {"Lisbon": 3, "Porto": 1, "Nope": None}
    assert both.total is None
    assert both.at_least == 3
    assert both.over_limit is True  # Lisbon alone is over the limit of 2
    assert "more than the contract limit" in both.warnings[0]
    assert both.warnings[1] == "segment 'Nope' does not exist"
    porto = export_forms.selection_check(ctx, shared, ["Porto"], live=False)
    assert (porto.total, porto.over_limit, porto.warnings) == (1, False, [])
    live = export_forms.selection_check(ctx, shared, ["Lisbon", "Porto"])
    assert (live.live, live.total, live.over_limit) == (True, 4, True)
