"""The /v1 contact endpoints behave as docs/simulator.md and docs/autopilot-api.md say."""

from __future__ import annotations

import re

import httpx

from segsync.simulator import Simulator
from tests.simulator.conftest import client_for

ID_RE = re.compile(r"^person_[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_missing_key_is_400_and_unknown_key_is_401_with_exact_bodies(sim: Simulator) -> None:
    async with client_for(sim, key=None) as anonymous, client_for(sim, key="nope") as wrong:
        missing = await anonymous.get("/account")
        unknown = await wrong.get("/account")
    assert missing.status_code == 400
    assert missing.json() == {
        "error": "Bad Request",
        "message": "No autopilotapikey header provided.",
    }
    assert unknown.status_code == 401
    assert unknown.json() == {
        "error": "Unauthorized",
        "message": "Provided autopilotapikey not valid.",
    }


async def test_account_answers_with_an_instance_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/account")
    assert response.status_code == 200
    assert response.json()["instanceId"]


async def test_post_contact_upserts_by_email_case_insensitively(client: httpx.AsyncClient) -> None:
    first = await client.post(
        "/contact", json={"contact": {"Email": "Ann@X.org", "FirstName": "A"}}
    )
    again = await client.post("/contact", json={"contact": {"Email": "ann@x.org", "LastName": "B"}})
    assert first.status_code == again.status_code == 200
    contact_id = first.json()["contact_id"]
    assert ID_RE.match(contact_id)
    assert again.json() == {"contact_id": contact_id}
    doc = (await client.get(f"/contact/{contact_id}")).json()
    assert doc["FirstName"] == "A"
    assert doc["LastName"] == "B"
    assert doc["Name"] == "A B"
    assert doc["api_originated"] is True
    assert TS_RE.match(doc["created_at"])
    assert TS_RE.match(doc["updated_at"])
    assert (await client.get("/contacts")).json()["total_contacts"] == 1


async def test_get_contact_by_id_or_raw_email_and_404_body(client: httpx.AsyncClient) -> None:
    created = await client.post("/contact", json={"contact": {"Email": "a+tag@x.org"}})
    contact_id = created.json()["contact_id"]
    by_email = await client.get("/contact/A+Tag@x.org")
    assert by_email.status_code == 200
    assert by_email.json()["contact_id"] == contact_id
    missing = await client.get("/contact/nobody@x.org")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found", "message": "Contact could not be found."}


async def test_bulk_upsert_returns_ids_and_email_map(client: httpx.AsyncClient) -> None:
    contacts = [{"Email": f"p{i}@x.org"} for i in range(100)]
    response = await client.post("/contacts", json={"contacts": contacts})
    assert response.status_code == 200
    body = response.json()
    assert len(body["contact_ids"]) == 100
    assert len(set(body["contact_ids"])) == 100
    assert body["email_contact_map"]["p7@x.org"] == body["contact_ids"][7]


async def test_bulk_of_101_or_not_a_list_is_400_and_stores_nothing(
    client: httpx.AsyncClient,
) -> None:
    too_many = [{"Email": f"p{i}@x.org"} for i in range(101)]
    response = await client.post("/contacts", json={"contacts": too_many})
    assert response.status_code == 400
    assert response.json()["error"] == "Bad Request"
    assert "101" in response.json()["message"]
    not_list = await client.post("/contacts", json={"contacts": {"Email": "a@x.org"}})
    assert not_list.status_code == 400
    assert (await client.get("/contacts")).json()["total_contacts"] == 0


async def test_malformed_contact_in_bulk_rejects_the_whole_request(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/contacts", json={"contacts": [{"Email": "ok@x.org"}, {"email": "lower@x.org"}]}
    )
    assert response.status_code == 400
    assert "contacts[1]" in response.json()["message"]
    assert (await client.get("/contacts")).json()["total_contacts"] == 0


async def test_autopilot_list_inside_a_contact_adds_it_and_at_top_level_is_ignored(
    client: httpx.AsyncClient,
) -> None:
    list_id = (await client.post("/list", json={"name": "Members"})).json()["list_id"]
    await client.post(
        "/contacts",
        json={"contacts": [{"Email": "in@x.org", "_autopilot_list": list_id}]},
    )
    await client.post(
        "/contacts", json={"contacts": [{"Email": "out@x.org"}], "_autopilot_list": list_id}
    )
    await client.post(
        "/contact", json={"contact": {"Email": "out2@x.org"}, "_autopilot_list": list_id}
    )
    members = (await client.get(f"/list/{list_id}/contacts")).json()
    assert [c["Email"] for c in members["contacts"]] == ["in@x.org"]
    assert (await client.get("/contact/in@x.org")).json()["lists"] == [list_id]
    assert (await client.get("/contact/out@x.org")).json()["lists"] == []


async def test_unknown_autopilot_list_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/contact", json={"contact": {"Email": "a@x.org", "_autopilot_list": "contactlist_x"}}
    )
    assert response.status_code == 400
    assert "contactlist_x" in response.json()["message"]


async def test_new_email_changes_the_email_of_the_named_contact(client: httpx.AsyncClient) -> None:
    contact_id = (await client.post("/contact", json={"contact": {"Email": "old@x.org"}})).json()[
        "contact_id"
    ]
    response = await client.post(
        "/contact", json={"contact": {"Email": "OLD@x.org", "_NewEmail": "new@x.org"}}
    )
    assert response.json() == {"contact_id": contact_id}
    assert (await client.get("/contact/old@x.org")).status_code == 404
    doc = (await client.get("/contact/new@x.org")).json()
    assert doc["contact_id"] == contact_id
    assert doc["Email"] == "new@x.org"
    assert "_NewEmail" not in doc


async def test_new_email_taken_by_another_contact_is_400(client: httpx.AsyncClient) -> None:
    await client.post("/contacts", json={"contacts": [{"Email": "a@x.org"}, {"Email": "b@x.org"}]})
    response = await client.post(
        "/contact", json={"contact": {"Email": "a@x.org", "_NewEmail": "b@x.org"}}
    )
    assert response.status_code == 400
    assert (await client.get("/contact/a@x.org")).status_code == 200


async def test_custom_fields_written_in_write_shape_read_in_read_shape(
    client: httpx.AsyncClient,
) -> None:
    custom = {
        "integer--Review--Rating": 5,
        "string--Tier": "Gold",
        "float--Spend": 12.5,
        "boolean--Vip": True,
        "date--Joined": "2024-05-01T00:00:00Z",
    }
    await client.post("/contact", json={"contact": {"Email": "c@x.org", "custom": custom}})
    doc = (await client.get("/contact/c@x.org")).json()
    assert "custom" not in doc
    assert {
        f["kind"]: (f["value"], f["fieldType"], f["deleted"]) for f in doc["custom_fields"]
    } == {
        "Review Rating": (5, "integer", False),
        "Tier": ("Gold", "string", False),
        "Spend": (12.5, "float", False),
        "Vip": (True, "boolean", False),
        "Joined": ("2024-05-01T00:00:00Z", "date", False),
    }
    fields = (await client.get("/contacts/custom_fields")).json()
    assert {"name": "Review Rating", "fieldType": "integer"} in fields
    assert len(fields) == 5


async def test_custom_field_with_wrong_value_type_or_bad_key_is_400(
    client: httpx.AsyncClient,
) -> None:
    wrong_value = await client.post(
        "/contact", json={"contact": {"Email": "c@x.org", "custom": {"integer--Age": "ten"}}}
    )
    bad_key = await client.post(
        "/contact", json={"contact": {"Email": "c@x.org", "custom": {"Age": 10}}}
    )
    assert wrong_value.status_code == bad_key.status_code == 400
    assert "Age" in wrong_value.json()["message"]
    assert (await client.get("/contact/c@x.org")).status_code == 404


async def test_paging_250_contacts_gives_three_pages_without_bookmark_on_the_last(
    client: httpx.AsyncClient,
) -> None:
    for start in range(0, 250, 100):
        batch = [{"Email": f"p{i:03d}@x.org"} for i in range(start, min(start + 100, 250))]
        assert (await client.post("/contacts", json={"contacts": batch})).status_code == 200
    pages = [(await client.get("/contacts")).json()]
    while "bookmark" in pages[-1]:
        pages.append((await client.get(f"/contacts/{pages[-1]['bookmark']}")).json())
    assert [len(p["contacts"]) for p in pages] == [100, 100, 50]
    assert all(p["total_contacts"] == 250 for p in pages)
    emails = [c["Email"] for p in pages for c in p["contacts"]]
    assert emails == [f"p{i:03d}@x.org" for i in range(250)]
    assert pages[0]["bookmark"] == pages[0]["contacts"][-1]["contact_id"]


async def test_exactly_100_contacts_is_one_page_without_bookmark(
    client: httpx.AsyncClient,
) -> None:
    batch = [{"Email": f"p{i}@x.org"} for i in range(100)]
    await client.post("/contacts", json={"contacts": batch})
    page = (await client.get("/contacts")).json()
    assert len(page["contacts"]) == 100
    assert "bookmark" not in page


async def test_delete_contact_by_email_then_404(client: httpx.AsyncClient) -> None:
    list_id = (await client.post("/list", json={"name": "L"})).json()["list_id"]
    await client.post(
        "/contact", json={"contact": {"Email": "d@x.org", "_autopilot_list": list_id}}
    )
    assert (await client.delete("/contact/D@x.org")).status_code == 200
    assert (await client.get("/contact/d@x.org")).status_code == 404
    assert (await client.delete("/contact/d@x.org")).status_code == 404
    assert (await client.get(f"/list/{list_id}/contacts")).json()["total_contacts"] == 0


async def test_unsubscribe_sets_the_flag(client: httpx.AsyncClient) -> None:
    await client.post("/contact", json={"contact": {"Email": "u@x.org"}})
    assert (await client.get("/contact/u@x.org")).json()["unsubscribed"] is False
    response = await client.post("/contact/u@x.org/unsubscribe")
    assert response.status_code == 200
    assert response.json() == {}
    assert (await client.get("/contact/u@x.org")).json()["unsubscribed"] is True
    assert (await client.post("/contact/none@x.org/unsubscribe")).status_code == 404


async def test_unknown_endpoint_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/nothing/here")
    assert response.status_code == 404
    assert response.json()["error"] == "Not Found"


async def test_unknown_bookmark_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/contacts/person_NOPE")
    assert response.status_code == 404
    assert response.json()["error"] == "Not Found"
