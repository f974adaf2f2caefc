"""``/api/v1`` schedule (T1), status (T3), erasures (P4) and notifications (T4): a forget
through the API after a real run against the simulator over loopback, the schedule's
validation errors naming the field, and who may call what."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from segsync.services import exports, notifications
from segsync.services.privacy import erasure
from segsync.services.runs import queue, worker
from segsync.simulator import RunningSimulator
from tests.web.conftest import WebHarness
from tests.web.test_data_fixtures import data_web_fixture, release, sim_fixture  # noqa: F401


def sim_emails(sim: RunningSimulator) -> set[str]:
    reply = httpx.get(f"{sim.root_url}/_sim/contacts")
    assert reply.status_code == 200, reply.text
    return {contact["Email"] for contact in reply.json()["contacts"]}


def run_export(web: WebHarness, name: str) -> int:
    ctx = web.ctx
    try:
        run = queue.enqueue_run(ctx, name).run
        claim = queue.claim_run(ctx, run.id)
        assert claim is not None
        worker.execute_claim(ctx, claim)
        return run.id
    finally:
        release(web, ctx)


def headers(web: WebHarness, role: str) -> dict[str, str]:
    return web.bearer(web.api_token(role))


# ---------------------------------------------------------------- schedule


def test_schedule_set_show_and_off(web: WebHarness) -> None:
    api, admin = web.api, headers(web, "administrator")
    shown = api.get("/api/v1/schedule", headers=admin)
    assert shown.status_code == 200, shown.text
    assert shown.json()["enabled"] is False
    assert shown.json()["next_due"] == []

    body = {"frequency": "weekly", "weekdays": ["mon", "thu"], "times": ["06:00"], "tz": "UTC"}
    saved = api.put("/api/v1/schedule", json=body, headers=admin)

    assert saved.status_code == 200, saved.text
    view = saved.json()
    assert view["enabled"] is True
    assert (view["frequency"], view["weekdays"], view["times"]) == (
        "weekly",
        ["mon", "thu"],
        ["06:00"],
    )
    assert view["saved_by"] == "administrator@example.com"
    assert len(view["next_due"]) == 5
    assert all(due.endswith("06:00:00Z") or "T06:00:00" in due for due in view["next_due"])
    listed = api.get("/api/v1/schedule?next=2", headers=admin).json()
    assert listed["next_due"] == view["next_due"][:2]

    off = api.post("/api/v1/schedule/off", headers=admin)
    assert off.status_code == 200, off.text
    assert off.json()["enabled"] is False
    assert off.json()["times"] == ["06:00"]  # kept for when it is switched on again
    assert off.json()["next_due"] == []
    assert api.get("/api/v1/schedule", headers=admin).json()["enabled"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"frequency": "daily", "times": ["01:00", "02:00", "03:00", "04:00", "05:00"]}, "times"),
        ({"frequency": "daily", "times": []}, "times"),
        ({"frequency": "daily", "times": ["25:00"]}, "times"),
        ({"frequency": "daily", "times": ["06:00", "06:00"]}, "times"),
        ({"frequency": "daily", "times": ["06:00"], "tz": "Mars/Olympus"}, "tz"),
        ({"frequency": "weekly", "times": ["06:00"]}, "weekdays"),
        ({"frequency": "weekly", "weekdays": ["funday"], "times": ["06:00"]}, "weekdays"),
        ({"frequency": "hourly", "times": ["06:00"]}, "frequency"),
        ({"times": ["06:00"]}, "frequency"),
    ],
)
def test_schedule_mistakes_are_422_naming_the_field(
    web: WebHarness, body: dict[str, Any], field: str
) -> None:
    api, admin = web.api, headers(web, "administrator")
    refused = api.put("/api/v1/schedule", json=body, headers=admin)
    assert refused.status_code == 422, refused.text
    error = refused.json()
    assert error["code"] == "invalid_input"
    assert error["message"].startswith(field) or field in [f["field"] for f in error["fields"]]
    assert api.get("/api/v1/schedule", headers=admin).json()["enabled"] is False


@pytest.mark.parametrize("role", ["contributor", "viewer"])
def test_only_administrators_see_and_change_the_schedule(web: WebHarness, role: str) -> None:
    api, them = web.api, headers(web, role)
    body = {"frequency": "daily", "times": ["06:00"]}
    assert api.get("/api/v1/schedule", headers=them).status_code == 403
    assert api.put("/api/v1/schedule", json=body, headers=them).status_code == 403
    assert api.post("/api/v1/schedule/off", headers=them).status_code == 403
    assert api.get("/api/v1/schedule").status_code == 401


# ---------------------------------------------------------------- status


def test_status_lists_every_task_for_anyone_signed_in(data_web: WebHarness) -> None:
    run_id = run_export(data_web, "News")
    api = data_web.api
    for role in ("viewer", "contributor", "administrator"):
        reply = api.get("/api/v1/status", headers=headers(data_web, role))
        assert reply.status_code == 200, reply.text
        report = reply.json()
        tasks = {(t["kind"], t["name"]): t for t in report["tasks"]}
        assert set(tasks) == {
            ("data_source", "people"),
            ("segment", "Lisbon"),
            ("segment", "Porto"),
            ("export", "News"),
            ("export", "Secret"),
        }
        assert tasks[("data_source", "people")]["rows"] == 5
        news = tasks[("export", "News")]
        assert (news["status"], news["latest_run"], news["connection"]) == (
            "successful",
            run_id,
            "Shared",
        )
        assert tasks[("export", "Secret")]["status"] == "never run"
        assert report["system"]["enabled"] is False
    only = api.get("/api/v1/status?kind=segment", headers=headers(data_web, "viewer")).json()
    assert [t["name"] for t in only["tasks"]] == ["Lisbon", "Porto"]
    bad = api.get("/api/v1/status?kind=user", headers=headers(data_web, "viewer"))
    assert bad.status_code == 422
    assert api.get("/api/v1/status").status_code == 401


# ---------------------------------------------------------------- erasures


def test_forget_through_the_api_erases_the_person_at_the_simulator(
    data_web: WebHarness, sim: RunningSimulator
) -> None:
    run_export(data_web, "News")
    assert sim_emails(sim) == {"ann@example.com", "bob@example.com"}
    api, admin = data_web.api, headers(data_web, "administrator")

    reply = api.post("/api/v1/erasures", json={"email": " BOB@example.com "}, headers=admin)

    assert reply.status_code == 200, reply.text
    assert "bob@example.com" not in reply.text.lower()
    report = reply.json()
    assert report["email"] == "b•••@e•••.com"
    assert (report["found"], report["pending"]) == (True, False)
    assert report["exports"] == ["News"]
    assert [(c["connection"], c["status"], c["deleted"]) for c in report["connections"]] == [
        ("Shared", "done", True)
    ]
    assert sim_emails(sim) == {"ann@example.com"}

    listed = api.get("/api/v1/erasures", headers=admin)
    assert listed.status_code == 200
    assert "bob@example.com" not in listed.text.lower()
    rows = listed.json()
    assert [r["status"] for r in rows] == ["suppressed", "done"]
    digest = erasure.email_digest("bob@example.com")
    assert all(r["email"] == digest for r in rows)
    done = api.get("/api/v1/erasures?status=done", headers=admin).json()
    assert [(r["connection"], r["attempts"]) for r in done] == [("Shared", 1)]
    assert api.get("/api/v1/erasures?status=lost", headers=admin).status_code == 422

    retried = api.post("/api/v1/erasures/retry", headers=admin)
    assert retried.status_code == 200
    assert retried.json() == {"done": 0, "pending": 0}
    # Suppressed: a later run does not send bob again...
    run_export(data_web, "News")
    assert sim_emails(sim) == {"ann@example.com"}
    # ... until the suppression is lifted.
    lifted = api.post("/api/v1/erasures/lift", json={"email": "bob@example.com"}, headers=admin)
    assert lifted.status_code == 200
    assert lifted.json()["lifted"] is True
    again = api.post("/api/v1/erasures/lift", json={"email": "bob@example.com"}, headers=admin)
    assert again.json()["lifted"] is False
    run_export(data_web, "News")
    assert sim_emails(sim) == {"ann@example.com", "bob@example.com"}


def test_forget_of_someone_never_exported_sends_nothing(
    data_web: WebHarness, sim: RunningSimulator
) -> None:
    api, admin = data_web.api, headers(data_web, "administrator")
    reply = api.post("/api/v1/erasures", json={"email": "zed@example.com"}, headers=admin)
    assert reply.status_code == 200
    assert (reply.json()["found"], reply.json()["connections"]) == (False, [])
    assert "zed@example.com" not in reply.text
    invalid = api.post("/api/v1/erasures", json={"email": "zed"}, headers=admin)
    assert invalid.status_code == 422
    assert invalid.json()["message"].startswith("email")
    missing = api.post("/api/v1/erasures", json={}, headers=admin)
    assert missing.status_code == 422
    assert [f["field"] for f in missing.json()["fields"]] == ["email"]


@pytest.mark.parametrize("role", ["contributor", "viewer"])
def test_only_administrators_forget(data_web: WebHarness, sim: RunningSimulator, role: str) -> None:
    run_export(data_web, "News")
    api, them = data_web.api, headers(data_web, role)
    person = {"email": "ann@example.com"}
    assert api.post("/api/v1/erasures", json=person, headers=them).status_code == 403
    assert api.get("/api/v1/erasures", headers=them).status_code == 403
    assert api.post("/api/v1/erasures/retry", headers=them).status_code == 403
    assert api.post("/api/v1/erasures/lift", json=person, headers=them).status_code == 403
    assert api.post("/api/v1/erasures", json=person).status_code == 401
    assert "ann@example.com" in sim_emails(sim)


# ---------------------------------------------------------------- notifications


def test_notifications_list_and_mark_read(data_web: WebHarness) -> None:
    ctx = data_web.ctx
    try:
        run_id = queue.enqueue_run(ctx, "News").run.id
        notice = notifications.on_run_finished(
            ctx,
            export_id=exports.export_id(ctx, "News"),
            export_name="News",
            run_id=run_id,
            status="failure",
            message="The key was refused.",
            channels=[],
        )
    finally:
        release(data_web, ctx)
    assert notice is not None
    api, admin = data_web.api, headers(data_web, "administrator")
    listed = api.get("/api/v1/notifications?unread=true", headers=admin)
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()
    assert (item["id"], item["export"], item["kind"]) == (notice.id, "News", "export_failed")
    assert item["read_at"] is None

    both = api.post("/api/v1/notifications/read", json={"ids": [1], "all": True}, headers=admin)
    assert both.status_code == 422
    unknown = api.post("/api/v1/notifications/read", json={"ids": [999]}, headers=admin)
    assert unknown.status_code == 404
    marked = api.post("/api/v1/notifications/read", json={"ids": [notice.id]}, headers=admin)
    assert marked.json() == {"marked_read": 1}
    assert api.get("/api/v1/notifications?unread=true", headers=admin).json() == []
    assert api.post("/api/v1/notifications/read", json={"all": True}, headers=admin).json() == {
        "marked_read": 0
    }
    for role in ("contributor", "viewer"):
        them = headers(data_web, role)
        assert api.get("/api/v1/notifications", headers=them).status_code == 403
        refused = api.post("/api/v1/notifications/read", json={"all": True}, headers=them)
        assert refused.status_code == 403
