"""Changes made by hand in Autopilot, planted through ``/_sim``: lists with their members, a list
deleted or renamed, a contact unsubscribed; orphans and removals through the ``/v1`` API."""

from __future__ import annotations

import httpx

from segsync.simulator import SimulatorConfig, SimulatorHost
from tests.simulator.conftest import KEY


async def _list(client: httpx.AsyncClient, name: str, *emails: str) -> str:
    list_id = str((await client.post("/list", json={"name": name})).json()["list_id"])
    if emails:
        batch = [{"Email": email, "_autopilot_list": list_id} for email in emails]
        assert (await client.post("/contacts", json={"contacts": batch})).status_code == 200
    return list_id


async def test_lists_with_members_sorted_and_the_plain_shape_kept(
    client: httpx.AsyncClient, inspect: httpx.AsyncClient
) -> None:
    lisbon = await _list(client, "Lisbon", "zed@x.org", "ana@x.org")
    empty = await _list(client, "Empty")
    assert (await inspect.get("/lists", params={"members": "1"})).json() == {
        "Lisbon": ["ana@x.org", "zed@x.org"],
        "Empty": [],
    }
    assert (await inspect.get("/lists")).json() == {
        "lists": [
            {"list_id": lisbon, "title": "Lisbon", "members": 2},
            {"list_id": empty, "title": "Empty", "members": 0},
        ]
    }
    assert "lists" in (await inspect.get("/lists", params={"members": "0"})).json()


async def test_lists_sharing_a_title_are_each_shown_with_their_id(
    client: httpx.AsyncClient, inspect: httpx.AsyncClient
) -> None:
    first = await _list(client, "Twice", "a@x.org")
    second = await _list(client, "Twice", "b@x.org")
    assert (await inspect.get("/lists?members=1")).json() == {
        f"Twice [{first}]": ["a@x.org"],
        f"Twice [{second}]": ["b@x.org"],
    }


async def test_deleting_a_list_by_hand_drops_its_memberships_and_keeps_its_contacts(
    client: httpx.AsyncClient, inspect: httpx.AsyncClient
) -> None:
    gone = await _list(client, "Gone", "a@x.org", "b@x.org")
    kept = await _list(client, "Kept", "a@x.org")
    answer = await inspect.delete(f"/lists/{gone}")
    assert (answer.status_code, answer.json()) == (
        200,
        {"deleted": gone, "title": "Gone", "members": 2},
    )
    assert (await inspect.get("/lists?members=1")).json() == {"Kept": ["a@x.org"]}
    assert (await client.get("/lists")).json() == {"lists": [{"list_id": kept, "title": "Kept"}]}
    assert (await client.get("/contact/a@x.org")).json()["lists"] == [kept]
    assert (await client.get("/contact/b@x.org")).json()["lists"] == []
    again = await inspect.delete(f"/lists/{gone}")
    assert (again.status_code, again.json()["message"]) == (404, "List could not be found.")


async def test_a_deleted_list_id_is_unknown_to_the_api(
    client: httpx.AsyncClient, inspect: httpx.AsyncClient
) -> None:
    gone = await _list(client, "Gone", "a@x.org")
    await inspect.delete(f"/lists/{gone}")
    not_found = {"error": "Not Found", "message": "List could not be found."}
    for method, path in [
        ("GET", f"/list/{gone}/contacts"),
        ("GET", f"/list/{gone}/contact/a@x.org"),
        ("POST", f"/list/{gone}/contact/a@x.org"),
        ("DELETE", f"/list/{gone}/contact/a@x.org"),
    ]:
        answer = await client.request(method, path)
        assert (answer.status_code, answer.json()) == (404, not_found), (method, path)
    bulk = await client.post(
        "/contacts",
        json={"contacts": [{"Email": "new@x.org"}, {"Email": "a@x.org", "_autopilot_list": gone}]},
    )
    assert bulk.status_code == 400
    assert bulk.json()["message"] == f"_autopilot_list {gone!r} is not a known list id."
    assert (await client.get("/contact/new@x.org")).status_code == 404  # nothing of it stored
    recreated = await _list(client, "Gone", "a@x.org")
    assert recreated != gone
    assert (await inspect.get("/lists?members=1")).json() == {"Gone": ["a@x.org"]}


async def test_renaming_a_list_by_hand_keeps_its_id_and_members(
    client: httpx.AsyncClient, inspect: httpx.AsyncClient
) -> None:
    list_id = await _list(client, "Old", "a@x.org")
    answer = await inspect.post(f"/lists/{list_id}", json={"title": "New"})
    assert (answer.status_code, answer.json()) == (200, {"list_id": list_id, "title": "New"})
    assert (await client.get("/lists")).json() == {"lists": [{"list_id": list_id, "title": "New"}]}
    assert (await inspect.get("/lists?members=1")).json() == {"New": ["a@x.org"]}
    for body in ({}, {"title": "  "}, {"title": 3}):
        refused = await inspect.post(f"/lists/{list_id}", json=body)
        assert refused.status_code == 400
        assert "title" in refused.json()["message"]
    unknown = await inspect.post("/lists/contactlist_nope", json={"title": "X"})
    assert unknown.status_code == 404


async def test_unsubscribing_by_hand_is_not_an_api_request(
    client: httpx.AsyncClient, inspect: httpx.AsyncClient
) -> None:
    await client.post("/contact", json={"contact": {"Email": "Ana@x.org"}})
    before = (await inspect.get("/stats")).json()["total"]
    answer = await inspect.post("/contacts/ana@x.org/unsubscribe")
    assert answer.status_code == 200
    assert answer.json()["unsubscribed"] is True
    assert (await client.get("/contact/ana@x.org")).json()["unsubscribed"] is True
    assert (await inspect.get("/stats")).json()["total"] == before + 1  # only the GET above
    missing = await inspect.post("/contacts/who@x.org/unsubscribe")
    assert (missing.status_code, missing.json()["message"]) == (
        404,
        "Contact could not be found.",
    )


async def test_orphans_and_removals_are_planted_through_the_api(
    client: httpx.AsyncClient, inspect: httpx.AsyncClient
) -> None:
    list_id = await _list(client, "L", "a@x.org", "b@x.org")
    orphan = {"contact": {"Email": "orphan@x.org", "_autopilot_list": list_id}}
    assert (await client.post("/contact", json=orphan)).status_code == 200
    removed = await client.delete(f"/list/{list_id}/contact/b@x.org")
    assert (removed.status_code, removed.json()) == (200, {})
    assert (await inspect.get("/lists?members=1")).json() == {"L": ["a@x.org", "orphan@x.org"]}


def test_by_hand_operations_over_a_loopback_server(simulator_host: SimulatorHost) -> None:
    running = simulator_host.serve(SimulatorConfig(rate_limit=0, seed=3))
    headers = {"autopilotapikey": KEY}
    with httpx.Client(base_url=running.root_url, timeout=10) as http:
        list_id = http.post("/v1/list", json={"name": "L"}, headers=headers).json()["list_id"]
        contact = {"contact": {"Email": "a@x.org", "_autopilot_list": list_id}}
        assert http.post("/v1/contact", json=contact, headers=headers).status_code == 200
        assert http.get("/_sim/lists", params={"members": 1}).json() == {"L": ["a@x.org"]}
        assert http.post(f"/_sim/lists/{list_id}", json={"title": "M"}).status_code == 200
        assert http.post("/_sim/contacts/a@x.org/unsubscribe").status_code == 200
        assert http.get("/_sim/lists?members=1").json() == {"M": ["a@x.org"]}
        assert http.delete(f"/_sim/lists/{list_id}").status_code == 200
        assert http.get("/_sim/lists?members=1").json() == {}
        assert http.get(f"/v1/list/{list_id}/contacts", headers=headers).status_code == 404
        assert http.get("/v1/contact/a@x.org", headers=headers).json()["unsubscribed"] is True
