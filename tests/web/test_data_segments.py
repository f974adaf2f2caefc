"""Data > Segments in the browser and ``/api/v1/segments`` (S2–S8)."""

from __future__ import annotations

import csv
import io
import re

from segsync.services import exports, segments
from tests.web.conftest import WebHarness
from tests.web.test_data_fixtures import data_web_fixture, sim_fixture  # noqa: F401

LISBON_YAML = """name: Lisbon or Faro
description: coastal
rules:
  - conditions:
      any:
        - {attribute: City, op: equals, value: lisbon}
        - {attribute: City, op: in, value: [Faro]}
"""


def _segment_id(web: WebHarness, name: str) -> int:
    return next(s.id for s in segments.list_segments(web.ctx) if s.name == name)


def test_create_a_segment_from_the_yaml_textarea_saves_a_draft(data_web: WebHarness) -> None:
    browser = data_web.client_as("contributor")
    saved = browser.post(
        "/data/segments/new",
        data=data_web.form(browser, "/data/segments/new", definition=LISBON_YAML),
    )
    assert saved.status_code == 303
    details = browser.get(saved.headers["location"])
    assert details.status_code == 200
    assert "Segment Lisbon or Faro" in details.text
    assert "status-draft" in details.text
    record = segments.show_segment(data_web.ctx, "Lisbon or Faro")
    assert record.segment.status.value == "draft"
    assert record.segment.created_by == "contributor@example.com"


def test_a_bad_definition_is_shown_again_with_its_path(data_web: WebHarness) -> None:
    browser = data_web.client_as("administrator")
    bad = LISBON_YAML.replace("attribute: City, op: in", "attribute: Cty, op: in")
    page = browser.post(
        "/data/segments/new", data=data_web.form(browser, "/data/segments/new", definition=bad)
    )
    assert page.status_code == 422
    assert "rules[0].conditions.any[1]" in page.text
    assert "did you mean" in page.text
    assert "Cty" in page.text  # the text comes back to be fixed
    assert "Lisbon or Faro" not in {s.name for s in segments.list_segments(data_web.ctx)}


def test_the_estimate_counts_without_saving_and_reports_errors_with_paths(
    data_web: WebHarness,
) -> None:
    browser = data_web.client_as("contributor")
    token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/data/segments/new").text)
    assert token
    headers = {"X-CSRF-Token": token.group(1)}
    good = browser.post(
        "/data/segments/estimate", json={"definition": LISBON_YAML}, headers=headers
    ).json()
    assert good == {"ok": True, "count": 4, "name": "Lisbon or Faro", "errors": []}
    unnamed = {"rules": [{"conditions": {"all": [{"attribute": "Score", "op": "greater_than",
                                                  "value": 25}]}}]}  # fmt: skip
    assert browser.post(
        "/data/segments/estimate", json={"definition": unnamed}, headers=headers
    ).json()["count"] == 3  # fmt: skip
    wrong = {"rules": [{"conditions": {"all": [{"attribute": "Score", "op": "contains",
                                                "value": "x"}]}}]}  # fmt: skip
    result = browser.post(
        "/data/segments/estimate", json={"definition": wrong}, headers=headers
    ).json()
    assert result["ok"] is False
    assert result["count"] is None
    assert result["errors"][0]["path"] == "rules[0].conditions.all[0]"
    assert "contains" in result["errors"][0]["message"]
    # The API estimates too; nothing was saved by any of this.
    token_api = data_web.api_token("contributor")
    api = data_web.api.post(
        "/api/v1/segments/estimate", json=wrong, headers=data_web.bearer(token_api)
    )
    assert api.status_code == 200
    assert api.json()["errors"][0]["path"] == "rules[0].conditions.all[0]"
    assert {s.name for s in segments.list_segments(data_web.ctx)} == {"Lisbon", "Porto"}
    # Viewers have no builder.
    viewer = data_web.api_token("viewer")
    refused = data_web.api.post(
        "/api/v1/segments/estimate", json=wrong, headers=data_web.bearer(viewer)
    )
    assert refused.status_code == 403


def test_segments_api_create_get_update_count_preview_refresh_delete(
    data_web: WebHarness,
) -> None:
    api, headers = data_web.api, data_web.bearer(data_web.api_token("contributor"))
    body = {
        "name": "High scores",
        "rules": [{"conditions": {"all": [{"attribute": "Score", "op": "greater_or_equal",
                                           "value": 30}]}}],
    }  # fmt: skip
    made = api.post("/api/v1/segments", json=body, headers=headers)
    assert made.status_code == 201, made.text
    sid = made.json()["id"]
    assert made.json()["status"] == "draft"
    assert api.post("/api/v1/segments", json=body, headers=headers).status_code == 409
    assert api.get(f"/api/v1/segments/{sid}/count", headers=headers).json()["count"] == 3
    preview = api.get(f"/api/v1/segments/{sid}/preview?limit=2", headers=headers).json()
    assert [row["id"] for row in preview["rows"]] == [3, 4]
    refreshed = api.post(f"/api/v1/segments/{sid}/refresh", headers=headers).json()
    assert refreshed["status"] == "active"
    assert refreshed["member_count"] == 3
    assert refreshed["entered"] == 3
    body["rules"][0]["conditions"]["all"][0]["value"] = 50
    updated = api.put(f"/api/v1/segments/{sid}", json=body, headers=headers).json()
    assert updated["members_stale"] is True
    got = api.get(f"/api/v1/segments/{sid}", headers=headers).json()
    assert got["definition"]["rules"][0]["conditions"]["all"][0]["value"] == 50
    assert got["history"][0]["member_count"] == 3
    listed = api.get("/api/v1/segments", headers=headers).json()
    assert {s["name"] for s in listed} == {"Lisbon", "Porto", "High scores"}
    bad = api.post("/api/v1/segments", json={"name": "x", "rules": []}, headers=headers)
    assert bad.status_code == 422
    assert "rules" in bad.json()["message"]
    assert api.delete(f"/api/v1/segments/{sid}", headers=headers).status_code == 204
    assert api.get(f"/api/v1/segments/{sid}", headers=headers).status_code == 404
    lisbon = _segment_id(data_web, "Lisbon")
    refused = api.delete(f"/api/v1/segments/{lisbon}", headers=headers)
    assert refused.status_code == 409
    assert "News" in refused.json()["message"]


def test_quick_segment_shows_top_values_and_creates_a_one_condition_segment(
    data_web: WebHarness,
) -> None:
    browser = data_web.client_as("administrator")
    page = browser.get("/data/segments/quick?attribute=City")
    assert page.status_code == 200
    assert re.search(r"<strong>Lisbon</strong></td>\s*<td class=\"num\">3</td>", page.text)
    made = browser.post(
        "/data/segments/quick",
        data=data_web.form(browser, "/data/segments/quick", attribute="City",
                           pick='equals "Porto"'),
    )  # fmt: skip
    assert made.status_code == 303
    details = segments.show_segment(data_web.ctx, "City equals Porto")
    condition = details.to_dict()["definition"]["rules"][0]["conditions"]["all"]
    assert condition == [{"attribute": "City", "op": "equals", "value": "Porto"}]
    numbers = browser.get("/data/segments/quick?attribute=Score")
    assert "p50" in numbers.text


def test_details_refresh_history_preview_and_csv_of_all_members(data_web: WebHarness) -> None:
    browser = data_web.client_as("contributor")
    sid = _segment_id(data_web, "Lisbon")
    page = f"/data/segments/{sid}"
    refreshed = browser.post(f"{page}/refresh", data=data_web.form(browser, page))
    assert refreshed.status_code == 303
    details = browser.get(page).text
    assert "3 members (3 entered, 0 left)" in details
    assert "status-active" in details
    assert "ann@example.com" not in details  # the preview is read after the page
    assert f'data-preview="{page}/preview.json"' in details
    assert f'href="{page}?preview=live#preview-title"' in details  # the link without JavaScript
    live = browser.get(f"{page}?preview=live").text
    assert "ann@example.com" in live  # the preview table
    assert "eve@example.com" not in live
    preview = browser.get(f"{page}/preview.json").json()
    assert preview["key"] == preview["columns"][0]
    emails = [row["Email"] for row in preview["rows"]]
    assert "ann@example.com" in emails
    assert "eve@example.com" not in emails
    download = browser.get(f"{page}/members.csv")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert sorted(r["Email"] for r in rows) == ["ann@example.com", "bob@example.com",
                                                 "not-an-email"]  # fmt: skip


def test_manage_exports_adds_the_segment_and_delete_is_refused_naming_them(
    data_web: WebHarness,
) -> None:
    browser = data_web.client_as("contributor")
    sid = _segment_id(data_web, "Porto")
    page = f"/data/segments/{sid}"
    news = exports.export_id(data_web.ctx, "News")
    html = browser.get(page).text
    assert f'<option value="{news}">News</option>' in html  # editable, not using it yet
    assert "Secret" in html  # uses it (listed), but not addable by a contributor
    assert "Start a new export from it" in html
    added = browser.post(f"{page}/add-to-export", data=data_web.form(browser, page, export_id=news))
    assert added.status_code == 303
    assert exports.get_export(
        data_web.ctx, exports.export_id(data_web.ctx, "News")
    ).segment_names == ["Lisbon", "Porto"]
    refused = browser.post(f"{page}/delete", data=data_web.form(browser, page))
    assert refused.status_code == 409
    assert "News" in refused.text
    assert "Secret" in refused.text
    form = browser.get("/data/exports/new?segment=Porto").text
    assert 'value="Porto" checked' in form
