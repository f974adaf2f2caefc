"""Runs from the browser and ``/api/v1/runs`` (X1, X8–X11): queued by the request, executed by
a worker (driven here in the test thread, deterministically), followed on the run page."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import timedelta

from segsync.domain.runs import RunStatus
from segsync.services import exports
from segsync.services.runs import queue, worker
from segsync.services.runs import views as run_views
from segsync.simulator import RunningSimulator
from tests.web.conftest import WebHarness
from tests.web.test_data_fixtures import data_web_fixture, release, sim_fixture  # noqa: F401


def _work(web: WebHarness, run_id: int) -> None:
    """What the worker of ``segsync serve`` does with the queued run."""
    ctx = web.ctx
    try:
        claim = queue.claim_run(ctx, run_id)
        assert claim is not None, "the queued run could not be claimed"
        worker.execute_claim(ctx, claim)
    finally:
        release(web, ctx)


def test_run_via_the_api_against_the_simulator(data_web: WebHarness, sim: RunningSimulator) -> None:
    api, headers = data_web.api, data_web.bearer(data_web.api_token("contributor"))
    news = exports.export_id(data_web.ctx, "News")
    started = api.post("/api/v1/runs", json={"export_id": news}, headers=headers)
    assert started.status_code == 202, started.text
    run = started.json()
    assert run["status"] == "queued"
    assert run["progress"]["percent"] is None
    _work(data_web, run["id"])
    for _ in range(10):  # poll until final, as a client would
        run = api.get(f"/api/v1/runs/{run['id']}", headers=headers).json()
        if run["final"]:
            break
    assert run["status"] == "successful", run
    assert run["counts"]["members"] == 3
    assert run["counts"]["invalid"] == 1
    assert run["counts"]["added"] == 2
    assert run["progress"]["percent"] == 100.0
    assert run["progress"]["eta_seconds"] is None
    assert run["rejects"] == {"invalid": 1}
    emails = {c["Email"] for c in sim.simulator.contacts_snapshot()}
    assert emails == {"ann@example.com", "bob@example.com"}
    listed = api.get(f"/api/v1/runs?export_id={news}", headers=headers).json()
    assert [r["id"] for r in listed] == [run["id"]]
    rejects = api.get(f"/api/v1/runs/{run['id']}/rejects", headers=headers).json()
    assert rejects["total"] == 1
    assert rejects["items"][0]["email"] == "not-an-email"
    as_csv = api.get(f"/api/v1/runs/{run['id']}/rejects.csv", headers=headers)
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["email"], r["kind"]) for r in rows] == [("not-an-email", "invalid")]
    # The run page shows it all, and its CSV.
    browser = data_web.client_as("viewer")
    page = browser.get(f"/data/runs/{run['id']}").text
    assert "status-successful" in page
    assert 'data-count="added">2<' in page
    assert "not-an-email" in page
    assert ">Cancel<" not in page
    assert browser.get(f"/data/runs/{run['id']}/rejects.csv").text.startswith("email,")
    assert browser.get(f"/data/runs/{run['id']}.json").json()["status"] == "successful"
    secret = exports.export_id(data_web.ctx, "Secret")
    refused = api.post("/api/v1/runs", json={"export_id": secret}, headers=headers)
    assert refused.status_code == 403


def test_run_button_queues_and_goes_to_the_run_page_then_cancel(data_web: WebHarness) -> None:
    browser = data_web.client_as("contributor")
    news = exports.export_id(data_web.ctx, "News")
    page = f"/data/exports/{news}"
    started = browser.post(f"{page}/run", data=data_web.form(browser, page))
    assert started.status_code == 303
    location = started.headers["location"]
    assert location.startswith("/data/runs/")
    run_page = browser.get(location).text
    assert "status-queued" in run_page
    assert "<progress" in run_page
    assert 'data-run-poll="' in run_page
    assert ">Cancel<" in run_page
    assert ">Refresh<" in run_page  # the no-JS way to follow it
    viewer = data_web.client_as("viewer")
    assert ">Cancel<" not in viewer.get(location).text
    forged = viewer.post(f"{location}/cancel", data=data_web.form(viewer, location))
    assert forged.status_code == 403
    canceled = browser.post(f"{location}/cancel", data=data_web.form(browser, location))
    assert canceled.status_code == 303
    assert "status-canceled" in browser.get(location).text


def test_dry_run_shows_the_plan_and_sends_nothing(
    data_web: WebHarness, sim: RunningSimulator
) -> None:
    browser = data_web.client_as("administrator")
    news = exports.export_id(data_web.ctx, "News")
    page = f"/data/exports/{news}"
    started = browser.post(f"{page}/dry-run", data=data_web.form(browser, page))
    run_id = int(started.headers["location"].rsplit("/", 1)[1])
    _work(data_web, run_id)
    html = browser.get(f"/data/runs/{run_id}").text
    assert "Plan (nothing was sent)" in html
    assert "Sample payloads for Lisbon" in html
    assert "ann@example.com" in html
    assert sim.simulator.contacts_snapshot() == []


def test_run_all_queues_every_scheduled_export_for_administrators_only(
    data_web: WebHarness,
) -> None:
    api = data_web.api
    viewer = data_web.bearer(data_web.api_token("viewer"))
    assert api.post("/api/v1/runs/run-all", headers=viewer).status_code == 403
    admin = data_web.bearer(data_web.api_token("administrator"))
    queued = api.post("/api/v1/runs/run-all", headers=admin)
    assert queued.status_code == 202
    items = {item["export"]: item for item in queued.json()}
    assert set(items) == {"News", "Secret"}
    assert all(item["run_id"] for item in items.values())
    statuses = {
        r["export_name"]: r["status"] for r in api.get("/api/v1/runs", headers=admin).json()
    }
    assert statuses == {"News": "queued", "Secret": "queued"}


def test_progress_has_percent_and_eta(data_web: WebHarness) -> None:
    queued = queue.enqueue_run(data_web.ctx, "News").run
    now = data_web.clock()
    running = replace(
        queued,
        status=RunStatus.PROCESSING,
        started_at=now - timedelta(seconds=10),
        items_total=200,
        items_done=50,
    )
    progress = run_views.progress_of(running, now)
    assert progress.percent == 25.0
    assert progress.eta_seconds == 30.0
    assert progress.final is False
    assert run_views.progress_of(queued, now).percent is None
