"""A held run on the web and through ``/api/v1/runs`` (docs/exports.md "Blast-radius hold"):
the run page shows the plan's verdict with Approve and Dismiss to whoever may run the export,
and the server refuses the others."""

from __future__ import annotations

from segsync.domain.runs import RunStatus
from segsync.services import exports
from segsync.services.runs import queue, worker
from segsync.simulator import RunningSimulator
from segsync.storage.repositories.run_holds import RunHoldRepository
from segsync.storage.repositories.runs import RunRecord, RunRepository
from tests.web.conftest import WebHarness
from tests.web.test_data_fixtures import data_web_fixture, release, sim_fixture  # noqa: F401

HOLD = {
    "held": True,
    "rule": {"removals": "20%", "growth": "3x"},
    "reasons": ["list 'Lisbon' would lose 2 of its 2 members (100%; the export holds above 20%)"],
    "fingerprint": "f" * 64,
    "lists": [
        {
            "segment_id": 1,
            "before": 2,
            "after": 0,
            "segment_members": 0,
            "to_add": 0,
            "to_remove": 2,
            "first_fill": False,
            "held": True,
            "reasons": [],
            "leaving_sample": ["ann@example.com", "bob@example.com"],
            "joining_sample": [],
        }
    ],
}


def held_run(web: WebHarness, export: str = "News") -> int:
    """A run of ``export`` ended Held with :data:`HOLD` as its verdict."""
    ctx = web.ctx
    export_id = exports.export_id(ctx, export)
    try:
        with ctx.db.session() as session:
            runs = RunRepository(session)
            run = runs.create(
                export_id=export_id,
                export_name=export,
                connection_id=None,
                actor="scheduler",
                now=ctx.now(),
                status=RunStatus.PROCESSING,
                lease_owner="test",
            )
            RunHoldRepository(session).set_hold(run.id, HOLD)
            runs.finish(run.id, RunStatus.HELD, now=ctx.now(), message="held: too much")
    finally:
        release(web, ctx)
    return run.id


def _execute(web: WebHarness, run_id: int) -> RunRecord:
    """What a worker of ``segsync serve`` does with the queued run."""
    claim = queue.claim_run(web.ctx, run_id)
    assert claim is not None
    try:
        return worker.execute_claim(web.ctx, claim)
    finally:
        release(web, web.ctx)


def test_the_run_page_shows_the_hold_and_approve_sends_the_run_on(data_web: WebHarness) -> None:
    run_id = held_run(data_web)
    page = f"/data/runs/{run_id}"
    viewer = data_web.client_as("viewer")
    seen = viewer.get(page).text
    assert "status-held" in seen
    assert "would lose 2 of its 2 members" in seen
    assert "bob@example.com" in seen  # who would leave
    assert ">Approve<" not in seen
    forged = viewer.post(f"{page}/approve", data=data_web.form(viewer, page))
    assert forged.status_code == 403

    browser = data_web.client_as("contributor")
    html = browser.get(page).text
    assert ">Approve<" in html
    assert ">Dismiss<" in html
    approved = browser.post(f"{page}/approve", data=data_web.form(browser, page))
    assert approved.status_code == 303
    assert "status-queued" in browser.get(page).text
    done = _execute(data_web, run_id)
    # the stored fingerprint is not this plan's: planned again, within the thresholds, sent
    assert done.status is RunStatus.SUCCESSFUL
    assert any("the data changed since the plan was approved" in w for w in done.warnings)


def test_the_api_approves_and_dismisses_for_whoever_may_run_the_export(
    data_web: WebHarness,
) -> None:
    api = data_web.api
    viewer = data_web.bearer(data_web.api_token("viewer"))
    contributor = data_web.bearer(data_web.api_token("contributor"))
    first, second = held_run(data_web), held_run(data_web)

    shown = api.get(f"/api/v1/runs/{second}", headers=viewer).json()
    assert shown["status"] == "held"
    assert shown["hold"]["lists"][0]["to_remove"] == 2
    assert api.post(f"/api/v1/runs/{second}/dismiss", headers=viewer).status_code == 403
    dismissed = api.post(f"/api/v1/runs/{second}/dismiss", headers=contributor)
    assert dismissed.status_code == 200, dismissed.text
    assert dismissed.json()["status"] == "canceled"
    again = api.post(f"/api/v1/runs/{second}/approve", headers=contributor)
    assert again.status_code == 409
    assert "not Held" in again.json()["message"]
    approved = api.post(f"/api/v1/runs/{first}/approve", headers=contributor)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "queued"
    assert approved.json()["hold"]["approved"]["fingerprint"] == "f" * 64
    secret = held_run(data_web, "Secret")  # on a connection not shared with contributors
    assert api.post(f"/api/v1/runs/{secret}/approve", headers=contributor).status_code == 403


def test_undo_from_the_run_page_and_the_api(data_web: WebHarness, sim: RunningSimulator) -> None:
    ctx = data_web.ctx
    news = exports.export_id(ctx, "News")
    queued = queue.enqueue_run(ctx, news)
    release(data_web, ctx)
    run = _execute(data_web, queued.run.id)
    assert run.counts.added == 2
    page = f"/data/runs/{run.id}"
    assert ">Undo<" not in data_web.client_as("viewer").get(page).text
    browser = data_web.client_as("contributor")
    assert ">Undo<" in browser.get(page).text
    dry = browser.post(f"{page}/undo", data=data_web.form(browser, page, dry_run="true"))
    assert dry.status_code == 303
    dry_page = browser.get(dry.headers["location"]).text
    assert "Dry run of an undo" in dry_page
    assert f'href="/data/runs/{run.id}"' in dry_page

    api = data_web.api
    viewer = data_web.bearer(data_web.api_token("viewer"))
    contributor = data_web.bearer(data_web.api_token("contributor"))
    assert api.post(f"/api/v1/runs/{run.id}/undo", headers=viewer).status_code == 403
    started = api.post(f"/api/v1/runs/{run.id}/undo", headers=contributor)
    assert started.status_code == 202, started.text
    undo = started.json()
    assert (undo["kind"], undo["undo_of"], undo["status"]) == ("undo", run.id, "queued")
    held = _execute(data_web, undo["id"])
    assert held.status is RunStatus.HELD  # undoing the first fill empties the list: held
    approved = api.post(f"/api/v1/runs/{undo['id']}/approve", headers=contributor)
    assert approved.status_code == 200, approved.text
    done = _execute(data_web, undo["id"])
    assert done.status is RunStatus.SUCCESSFUL, done.message
    assert done.counts.removed == 2
    assert all(not c["lists"] for c in sim.simulator.contacts_snapshot())
    again = api.post(f"/api/v1/runs/{run.id}/undo", headers=contributor)
    assert again.status_code == 409
    assert f"already undone by run {undo['id']}" in again.json()["message"]
