"""Verify from the browser and ``/api/v1/exports/{id}/verify``: queued by the request with its
request cost, executed by a worker (driven in the test thread), the drift shown on the run page;
refused to whoever may not run the export."""

from __future__ import annotations

import httpx

from segsync.services import exports
from segsync.simulator import RunningSimulator
from tests.web.conftest import WebHarness
from tests.web.test_data_fixtures import API_KEY, data_web_fixture, sim_fixture  # noqa: F401
from tests.web.test_data_runs import _work


def plant_orphan(sim: RunningSimulator, title: str, email: str) -> None:
    list_id = next(i.list_id for i in sim.simulator.state.lists.values() if i.title == title)
    response = httpx.post(
        sim.base_url + "/contact",
        json={"contact": {"Email": email, "_autopilot_list": list_id}},
        headers={"autopilotapikey": API_KEY},
    )
    assert response.status_code == 200


def lisbon_members(sim: RunningSimulator) -> set[str]:
    (found,) = [i for i in sim.simulator.state.lists.values() if i.title == "Lisbon"]
    return {c["Email"] for c in sim.simulator.contacts_snapshot() if found.list_id in c["lists"]}


def test_verify_and_repair_via_the_api(data_web: WebHarness, sim: RunningSimulator) -> None:
    api, headers = data_web.api, data_web.bearer(data_web.api_token("contributor"))
    news = exports.export_id(data_web.ctx, "News")
    first = api.post("/api/v1/runs", json={"export_id": news}, headers=headers).json()
    _work(data_web, first["id"])
    plant_orphan(sim, "Lisbon", "stray@example.com")

    started = api.post(f"/api/v1/exports/{news}/verify", json={}, headers=headers)

    assert started.status_code == 202, started.text
    body = started.json()
    assert body["estimate"] == {"lists": 1, "pages": 1, "requests": 2}
    assert body["run"]["kind"] == "verify"
    assert body["run"]["status"] == "queued"
    _work(data_web, body["run"]["id"])
    run = api.get(f"/api/v1/runs/{body['run']['id']}", headers=headers).json()
    assert run["status"] == "successful"
    assert run["plan"]["drift"] == 1
    assert run["plan"]["lists"][0]["orphan_emails"] == ["stray@example.com"]
    assert "stray@example.com" in lisbon_members(sim)

    repair = api.post(f"/api/v1/exports/{news}/verify", json={"repair": True}, headers=headers)
    assert repair.status_code == 202
    _work(data_web, repair.json()["run"]["id"])
    assert lisbon_members(sim) == {"ann@example.com", "bob@example.com"}

    secret = exports.export_id(data_web.ctx, "Secret")
    refused = api.post(f"/api/v1/exports/{secret}/verify", json={"repair": True}, headers=headers)
    assert refused.status_code == 403
    viewer = data_web.bearer(data_web.api_token("viewer"))
    assert api.post(f"/api/v1/exports/{news}/verify", json={}, headers=viewer).status_code == 403
    bad = api.put(
        f"/api/v1/exports/{news}/verify-schedule", json={"kind": "weekly"}, headers=headers
    )
    assert bad.status_code == 422
    weekly = {"kind": "weekly", "days": ["sun"], "at": "03:00"}
    saved = api.put(f"/api/v1/exports/{news}/verify-schedule", json=weekly, headers=headers)
    assert saved.status_code == 200, saved.text
    assert saved.json()["description"] == "Weekly on Sun at 03:00 (UTC)"


def test_verify_button_goes_to_the_run_page_with_the_drift(
    data_web: WebHarness, sim: RunningSimulator
) -> None:
    browser = data_web.client_as("contributor")
    news = exports.export_id(data_web.ctx, "News")
    page = f"/data/exports/{news}"
    ran = browser.post(f"{page}/run", data=data_web.form(browser, page))
    _work(data_web, int(ran.headers["location"].rsplit("/", 1)[1]))
    plant_orphan(sim, "Lisbon", "stray@example.com")
    assert ">Verify<" in browser.get(page).text

    started = browser.post(f"{page}/verify", data=data_web.form(browser, page))

    assert started.status_code == 303
    location = started.headers["location"]
    assert "about 2 request(s) to read its lists back" in browser.get(location).text
    _work(data_web, int(location.rsplit("/", 1)[1]))
    html = browser.get(location).text
    assert "Verify (nothing was changed)" in html
    assert 'id="verify-drift">1<' in html
    assert "stray@example.com" in html
    assert '<span class="hint">verify</span>' in browser.get(page).text  # in the run history
    viewer = data_web.client_as("viewer")
    assert ">Verify<" not in viewer.get(page).text
    forged = viewer.post(f"{page}/verify", data=data_web.form(viewer, page))
    assert forged.status_code == 403
