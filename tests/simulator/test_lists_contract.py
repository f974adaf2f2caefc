"""The /v1 list endpoints: create, list, membership check, add and remove."""

from __future__ import annotations

import re

import httpx


async def _list(client: httpx.AsyncClient, name: str) -> str:
    response = await client.post("/list", json={"name": name})
    assert response.status_code == 200
    return str(response.json()["list_id"])


async def test_create_and_get_lists_allowing_duplicate_names(client: httpx.AsyncClient) -> None:
    first = await _list(client, "Lisbon")
    second = await _list(client, "Lisbon")
    assert re.match(r"^contactlist_[0-9a-f-]{36}$", first)
    assert first != second
    assert (await client.get("/lists")).json() == {
        "lists": [{"list_id": first, "title": "Lisbon"}, {"list_id": second, "title": "Lisbon"}]
    }
    assert (await client.post("/list", json={})).status_code == 400


async def test_membership_check_add_remove_with_not_modified(client: httpx.AsyncClient) -> None:
    list_id = await _list(client, "L")
    await client.post("/contact", json={"contact": {"Email": "m@x.org"}})
    path = f"/list/{list_id}/contact/m@x.org"
    not_member = await client.get(path)
    assert not_member.status_code == 404
    assert not_member.content == b""
    added = await client.post(path)
    assert (added.status_code, added.json()) == (200, {})
    again = await client.post(path)
    assert (again.status_code, again.json()) == (200, {"not_modified": True})
    assert (await client.get(path)).status_code == 200
    removed = await client.delete(path)
    assert (removed.status_code, removed.json()) == (200, {})
    gone = await client.delete(path)
    assert (gone.status_code, gone.json()) == (200, {"not_modified": True})
    assert (await client.get(path)).status_code == 404


async def test_membership_with_unknown_list_or_contact_is_404(client: httpx.AsyncClient) -> None:
    list_id = await _list(client, "L")
    await client.post("/contact", json={"contact": {"Email": "m@x.org"}})
    unknown_list = await client.post("/list/contactlist_nope/contact/m@x.org")
    assert unknown_list.status_code == 404
    assert unknown_list.json() == {"error": "Not Found", "message": "List could not be found."}
    unknown_contact = await client.post(f"/list/{list_id}/contact/who@x.org")
    assert unknown_contact.status_code == 404
    assert unknown_contact.json()["message"] == "Contact could not be found."


async def test_list_contacts_are_paged_like_all_contacts(client: httpx.AsyncClient) -> None:
    list_id = await _list(client, "Big")
    for start in range(0, 150, 100):
        batch = [
            {"Email": f"p{i}@x.org", "_autopilot_list": list_id}
            for i in range(start, min(start + 100, 150))
        ]
        await client.post("/contacts", json={"contacts": batch})
    await client.post("/contact", json={"contact": {"Email": "outsider@x.org"}})
    first = (await client.get(f"/list/{list_id}/contacts")).json()
    assert (len(first["contacts"]), first["total_contacts"]) == (100, 150)
    second = (await client.get(f"/list/{list_id}/contacts/{first['bookmark']}")).json()
    assert len(second["contacts"]) == 50
    assert "bookmark" not in second
    assert (await client.get("/list/contactlist_nope/contacts")).status_code == 404
