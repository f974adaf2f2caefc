"""The client and the simulator together, in-process (httpx.ASGITransport): every operation of
the Destination interface against the contract the simulator states independently."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from segsync.destinations.autopilot import AutopilotDestination
from segsync.destinations.base import ConnectionConfig, UpsertItem
from segsync.errors import AuthenticationFailed
from segsync.simulator import Simulator, SimulatorConfig
from tests.destinations.conftest import asgi_config

KEY = "contract-key"


@pytest.fixture
def simulator() -> Simulator:
    return Simulator(SimulatorConfig(api_keys=[KEY], rate_limit=0, seed=7))


@pytest.fixture
async def dest(simulator: Simulator) -> AsyncIterator[AutopilotDestination]:
    config = asgi_config(simulator.app, KEY, max_attempts=3)
    async with AutopilotDestination(config) as destination:
        yield destination


async def test_check_credentials_names_the_instance(dest: AutopilotDestination) -> None:
    info = await dest.check_credentials()
    assert info.instance_id
    assert info.raw["instanceId"] == info.instance_id


async def test_a_wrong_key_is_rejected_without_retries(simulator: Simulator) -> None:
    config = ConnectionConfig(
        "http://simulator.test/v1", "wrong", 1000.0, transport=httpx.ASGITransport(simulator.app)
    )
    async with AutopilotDestination(config) as dest:
        with pytest.raises(AuthenticationFailed, match="rejected"):
            await dest.check_credentials()
        assert dest.requests_made == 1


async def test_ensure_list_creates_once_then_reuses(
    dest: AutopilotDestination, simulator: Simulator
) -> None:
    first = await dest.ensure_list("Lisbon big spenders")
    again = await dest.ensure_list("Lisbon big spenders")
    other = await dest.ensure_list("Lisbon big spenders (VIP)")
    assert first == again != other
    assert first.startswith("contactlist_")
    assert sorted(item.title for item in simulator.state.lists.values()) == [
        "Lisbon big spenders",
        "Lisbon big spenders (VIP)",
    ]


async def test_upsert_stores_fields_custom_fields_and_list_membership(
    dest: AutopilotDestination,
) -> None:
    list_id = await dest.ensure_list("VIPs")
    result = await dest.upsert_batch(
        [
            UpsertItem(
                "ana+news@example.org",
                {"FirstName": "Ana", "LastName": "Silva"},
                {"integer--Review--Rating": 5, "string--Tier": "gold"},
                list_id=list_id,
            ),
            UpsertItem("bo@example.org", {"FirstName": "Bo"}),
        ]
    )
    assert [o.ok for o in result.outcomes] == [True, True]
    assert all(o.contact_id and o.contact_id.startswith("person_") for o in result.outcomes)
    assert result.requests == 1

    ana = await dest.get_contact("ana+news@example.org")
    assert ana is not None
    assert ana["contact_id"] == result.outcomes[0].contact_id
    assert (ana["FirstName"], ana["LastName"]) == ("Ana", "Silva")
    assert list_id in ana["lists"]
    custom = {f["kind"]: f["value"] for f in ana["custom_fields"]}
    assert custom == {"Review Rating": 5, "Tier": "gold"}
    bo = await dest.get_contact("bo@example.org")
    assert bo is not None
    assert list_id not in bo.get("lists", [])


async def test_upsert_updates_by_email(dest: AutopilotDestination) -> None:
    first = await dest.upsert_batch([UpsertItem("cy@example.org", {"FirstName": "Cy"})])
    second = await dest.upsert_batch([UpsertItem("cy@example.org", {"FirstName": "Cyrus"})])
    assert first.outcomes[0].contact_id == second.outcomes[0].contact_id
    stored = await dest.get_contact("cy@example.org")
    assert stored is not None
    assert stored["FirstName"] == "Cyrus"


async def test_membership_add_remove_and_paging_through_members(
    dest: AutopilotDestination,
) -> None:
    list_id = await dest.ensure_list("Big list")
    emails = [f"m{i:03d}@example.org" for i in range(230)]
    for start in range(0, 230, 100):
        chunk = emails[start : start + 100]
        result = await dest.upsert_batch([UpsertItem(e, list_id=list_id) for e in chunk])
        assert all(o.ok for o in result.outcomes)
    before = dest.requests_made
    members = [m.email async for m in dest.list_members(list_id)]
    assert sorted(members) == emails
    assert dest.requests_made - before == 3  # pages of 100

    assert await dest.remove_membership(list_id, "m000@example.org") is True
    assert await dest.remove_membership(list_id, "m000@example.org") is False
    assert await dest.add_membership(list_id, "m000@example.org") is True
    assert await dest.add_membership(list_id, "m000@example.org") is False
    contact = await dest.get_contact("m000@example.org")
    assert contact is not None
    assert list_id in contact["lists"]


async def test_forget_deletes_the_contact(dest: AutopilotDestination) -> None:
    await dest.upsert_batch([UpsertItem("gone@example.org")])
    assert await dest.forget("gone@example.org") is True
    assert await dest.get_contact("gone@example.org") is None
    assert await dest.forget("gone@example.org") is False


async def test_rejected_emails_are_isolated_and_the_rest_saved(
    dest: AutopilotDestination, simulator: Simulator
) -> None:
    simulator.faults.reject_emails(r"^bad")
    items = [UpsertItem(f"{'bad' if i in (3, 70) else 'ok'}{i}@example.org") for i in range(100)]
    result = await dest.upsert_batch(items)
    rejected = [o.email for o in result.rejected]
    assert rejected == ["bad3@example.org", "bad70@example.org"]
    assert "bad3@example.org" in (result.outcomes[3].reason or "")
    assert result.requests == 2
    stored = {c["Email"] for c in simulator.contacts_snapshot()}
    assert stored == {i.email for i in items} - set(rejected)


async def test_a_timed_out_write_is_retried_and_acknowledged(
    dest: AutopilotDestination, simulator: Simulator
) -> None:
    simulator.faults.timeout_next_writes(1)
    result = await dest.upsert_batch([UpsertItem("slow@example.org")])
    assert result.outcomes[0].ok
    assert result.requests == 2
    assert [c["Email"] for c in simulator.contacts_snapshot()] == ["slow@example.org"]


async def test_forget_after_a_timed_out_delete_reports_it_deleted(
    dest: AutopilotDestination, simulator: Simulator
) -> None:
    await dest.upsert_batch([UpsertItem("x@example.org")])
    simulator.faults.timeout_next_writes(1)
    assert await dest.forget("x@example.org") is True
    assert simulator.contacts_snapshot() == []


@pytest.mark.parametrize(
    "email", ["a.b+tag@example.org", "o'neil@example.org", "we#ird?@example.org", "a/b@example.org"]
)
async def test_unusual_emails_round_trip_through_paths(
    dest: AutopilotDestination, email: str
) -> None:
    result = await dest.upsert_batch([UpsertItem(email, {"FirstName": "U"})])
    assert result.outcomes[0].ok, result.outcomes[0].reason
    stored = await dest.get_contact(email)
    assert stored is not None
    assert stored["Email"] == email
    assert await dest.forget(email) is True
