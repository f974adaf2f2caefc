"""The Ortto simulator (``SimulatorConfig(api="ortto")``) answers like docs/ortto-api.md says,
with the Autopilot simulator's machinery: key check, rate limit, fault switches, stats, reset,
``/_sim`` views, changes by hand and the state file (over ASGI, and one loopback server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from segsync.simulator import SimulatorConfig, create_simulator, serve_in_thread
from segsync.simulator.ortto import OrttoSimulator
from tests.simulator.conftest import FakeClock

KEY = "ortto-key"


def ortto(**config: Any) -> OrttoSimulator:
    made = create_simulator(SimulatorConfig(**{"api_keys": [KEY], "rate_limit": 0, "seed": 4,
                                               "api": "ortto", **config}))  # fmt: skip
    assert isinstance(made, OrttoSimulator)
    return made


def client_for(sim: OrttoSimulator, key: str | None = KEY) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sim.app),
        base_url="http://ortto.test",
        headers={} if key is None else {"X-Api-Key": key},
    )


@pytest.fixture
def sim() -> OrttoSimulator:
    return ortto()


@pytest.fixture
async def http(sim: OrttoSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(sim) as client:
        yield client


def people(*emails: str, **fields: Any) -> dict[str, Any]:
    return {
        "people": [{"fields": {"str::email": email, **fields}} for email in emails],
        "merge_by": ["str::email"],
        "merge_strategy": 2,
        "async": False,
    }


async def audience(http: httpx.AsyncClient, name: str) -> str:
    made = await http.post("/v1/audiences/create", json={"name": name})
    assert made.status_code == 200
    return str(made.json()["id"])


async def test_merge_creates_then_merges_by_email_and_refuses_per_person(
    sim: OrttoSimulator, http: httpx.AsyncClient
) -> None:
    first = await http.post("/v1/person/merge", json=people("a@x.org", **{"str::first": "A"}))
    assert [p["status"] for p in first.json()["people"]] == ["created"]
    sim.faults.reject_emails("^bad@")
    body = people("A@X.org", "bad@x.org", "nope", **{"str::last": "Lee"})
    again = await http.post("/v1/person/merge", json=body)
    answers = again.json()["people"]
    assert [a["status"] for a in answers] == ["merged", "error", "error"]
    assert answers[0]["person_id"] == first.json()["people"][0]["person_id"]
    assert "bad@x.org" in answers[1]["error"]
    assert "not a valid email" in answers[2]["error"]
    [stored] = sim.contacts_snapshot()
    assert stored["fields"] == {"str::email": "a@x.org", "str::first": "A", "str::last": "Lee"}
    too_many = people(*(f"p{i}@x.org" for i in range(101)))
    assert (await http.post("/v1/person/merge", json=too_many)).status_code == 400
    wrong_type = people("c@x.org", **{"int:cm:visits": "many"})
    answer = (await http.post("/v1/person/merge", json=wrong_type)).json()["people"][0]
    assert "does not fit" in answer["error"]


async def test_the_key_header_and_errors_are_ortto_s(sim: OrttoSimulator) -> None:
    for key, message in ((None, "Missing X-Api-Key header."), ("wrong", "Invalid API key.")):
        async with client_for(sim, key) as client:
            refused = await client.post("/v1/audiences/get", json={})
        assert refused.status_code == 401
        assert refused.json() == {"error": {"code": "unauthorized", "message": message}}
    async with client_for(sim) as client:
        unknown = await client.get("/v1/contacts")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not-found"


async def test_subscriptions_make_members_and_person_get_pages_them(
    sim: OrttoSimulator, http: httpx.AsyncClient
) -> None:
    gold = await audience(http, "Gold")
    emails = [f"m{i:03d}@x.org" for i in range(120)]
    for start in (0, 100):
        await http.post("/v1/person/merge", json=people(*emails[start : start + 100]))
        entries = [{"email": e, "subscribed": True} for e in emails[start : start + 100]]
        put = await http.put(
            "/v1/audience/subscribe", json={"audience_id": gold, "people": entries}
        )
        assert {a["status"] for a in put.json()["people"]} == {"subscribed"}
    off = {"audience_id": gold, "people": [{"email": emails[0], "subscribed": False}]}
    assert (await http.put("/v1/audience/subscribe", json=off)).json()["people"][0][
        "status"
    ] == "unsubscribed"
    assert (await http.put("/v1/audience/subscribe", json=off)).json()["people"][0][
        "status"
    ] == "unchanged"
    body = {"audience_id": gold, "audience_filter": "email-subscribers", "limit": 100}
    page = (await http.post("/v1/person/get", json=body)).json()
    assert (len(page["contacts"]), page["has_more"], page["next_offset"]) == (100, True, 100)
    rest = (await http.post("/v1/person/get", json={**body, "offset": 100})).json()
    assert (len(rest["contacts"]), rest["has_more"]) == (19, False)
    everyone = await http.post("/v1/person/get", json={"audience_id": gold, "limit": 500})
    assert len(everyone.json()["contacts"]) == 120  # the unsubscribed one is still a member
    gone = {"audience_id": "nope", "people": [{"email": emails[1], "subscribed": True}]}
    assert (await http.put("/v1/audience/subscribe", json=gone)).status_code == 404
    members = (await http.get("/_sim/lists", params={"members": 1})).json()
    assert members == {"Gold": emails[1:]}


async def test_audiences_are_paged_by_40_and_searched_by_name(http: httpx.AsyncClient) -> None:
    for n in range(45):
        await audience(http, f"Audience {n:02d}")
    first = (await http.post("/v1/audiences/get", json={"limit": 100})).json()
    second = (await http.post("/v1/audiences/get", json={"offset": 40})).json()
    assert (len(first), len(second)) == (40, 5)
    found = (await http.post("/v1/audiences/get", json={"search_term": "audience 44"})).json()
    assert [a["name"] for a in found] == ["Audience 44"]


async def test_archive_then_delete_and_a_merge_after_archiving_makes_a_new_person(
    sim: OrttoSimulator, http: httpx.AsyncClient
) -> None:
    made = await http.post("/v1/person/merge", json=people("a@x.org"))
    person_id = made.json()["people"][0]["person_id"]
    ids = {"inclusion_ids": [person_id]}
    assert (await http.request("DELETE", "/v1/person/delete", json=ids)).status_code == 400
    assert (await http.put("/v1/person/archive", json=ids)).json() == {"archived_contacts": 1}
    assert sim.contacts_snapshot() == []
    again = await http.post("/v1/person/merge", json=people("a@x.org"))
    assert again.json()["people"][0]["status"] == "created"
    deleted = await http.request("DELETE", "/v1/person/delete", json=ids)
    assert deleted.json() == {"deleted_contacts": 1}
    by_email = {"filter": {"$str::is": {"field_id": "str::email", "value": "A@x.org"}}}
    found = (await http.post("/v1/person/get", json=by_email)).json()["contacts"]
    assert [c["id"] for c in found] == [again.json()["people"][0]["person_id"]]


async def test_faults_stats_reset_and_changes_by_hand(
    sim: OrttoSimulator, http: httpx.AsyncClient
) -> None:
    gold = await audience(http, "Gold")
    sim.faults.fail_next(1)
    assert (await http.post("/v1/audiences/get", json={})).status_code == 500
    sim.faults.timeout_next_writes(1)
    timed_out = await http.post("/v1/person/merge", json=people("a@x.org"))
    assert timed_out.status_code == 408
    assert timed_out.json()["error"]["code"] == "timeout"
    assert sim.state.find("a@x.org") is not None  # committed, then 408
    renamed = await http.post(f"/_sim/lists/{gold}", json={"title": "Golden"})
    assert renamed.json() == {"list_id": gold, "title": "Golden"}
    assert (await http.get("/_sim/lists")).json() == {
        "lists": [{"list_id": gold, "title": "Golden", "members": 0}]
    }
    assert (await http.post("/_sim/contacts/a@x.org/unsubscribe")).status_code == 200
    assert sim.state.find("a@x.org").fields["bol::p"] is False  # type: ignore[union-attr]
    stats = (await http.get("/_sim/stats")).json()
    assert stats["requests"]["POST /v1/person/merge"] == {"408": 1}
    assert stats["requests"]["POST /v1/audiences/get"] == {"500": 1}
    assert (await http.delete(f"/_sim/lists/{gold}")).status_code == 200
    assert (await http.post("/_sim/reset")).json() == {"reset": True}
    assert (await http.get("/_sim/contacts")).json() == {"contacts": []}
    assert (await http.get("/_sim/stats")).json()["total"] == 0


async def test_rate_limit_per_key_answers_429_with_try_in_seconds() -> None:
    clock = FakeClock()
    sim = ortto(rate_limit=2, clock=clock, retry_after=3)
    async with client_for(sim) as http:
        codes = [(await http.post("/v1/audiences/get", json={})).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        throttled = await http.post("/v1/audiences/get", json={})
        assert throttled.json() == {
            "error": {"code": "rate-limit", "message": "rate limit", "try-in-seconds": 3}
        }
        clock.advance(1.0)
        assert (await http.post("/v1/audiences/get", json={})).status_code == 200


def test_the_state_file_survives_a_restart_on_a_real_server(tmp_path: Path) -> None:
    state = tmp_path / "ortto.json"
    config = {"state_file": state, "save_interval": 0}
    with serve_in_thread(ortto(**config)) as running:
        headers = {"X-Api-Key": KEY}
        made = httpx.post(
            f"{running.base_url}/audiences/create", json={"name": "Gold"}, headers=headers
        )
        httpx.post(f"{running.base_url}/person/merge", json=people("a@x.org"), headers=headers)
        body = {
            "audience_id": made.json()["id"],
            "people": [{"email": "a@x.org", "subscribed": True}],
        }
        httpx.put(f"{running.base_url}/audience/subscribe", json=body, headers=headers)
    again = ortto(**config)
    assert again.lists_with_members() == {"Gold": ["a@x.org"]}
    assert again.state.id_counter == 2


def test_an_unknown_api_is_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="api must be one of autopilot, ortto"):
        SimulatorConfig(api="mailchimp")
