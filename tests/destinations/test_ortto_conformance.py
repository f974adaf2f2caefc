"""Ortto passes the destination conformance kit, against its simulator over HTTP (in-process
ASGI), and what is particular to it: the wire shape, refusals, 429 with try-in-seconds, paging
of audiences and members, the catalogue's field ids and its errors in Ortto's words."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from segsync.destinations.base import ConnectionConfig, UpsertItem
from segsync.destinations.ortto import OrttoDestination
from segsync.domain.fields import Target
from segsync.errors import AuthenticationFailed, InputError, RateLimited
from segsync.simulator import SimulatorConfig, create_simulator
from segsync.simulator.ortto import OrttoSimulator
from segsync.testing.conformance import ConformanceHarness, DestinationConformance
from tests.destinations.conftest import VirtualTime

KEY = "ortto-conformance-key"


class RecordingTransport(httpx.AsyncBaseTransport):
    """The Ortto simulator over ASGI, keeping what the client sends: each merged person, with
    the audience subscription that followed it in the same batch (what ``preview`` shows)."""

    def __init__(self, simulator: OrttoSimulator) -> None:
        self.inner = httpx.ASGITransport(app=simulator.app)
        self.records: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, Any]] = []
        self._last: dict[str, dict[str, Any]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raw = await request.aread()
        body = json.loads(raw) if raw else None
        self.requests.append((request.method, request.url.path, body))
        if request.url.path.endswith("/person/merge"):
            for person in body["people"]:
                record = {"person": person}
                self.records.append(record)
                self._last[person["fields"]["str::email"]] = record
        if request.url.path.endswith("/audience/subscribe"):
            for entry in body["people"]:
                if entry["subscribed"] and entry["email"] in self._last:
                    self._last.pop(entry["email"])["subscription"] = {
                        "audience_id": body["audience_id"],
                        **entry,
                    }
        return await self.inner.handle_async_request(request)


class OrttoHarness(ConformanceHarness):
    def __init__(self, **config: Any) -> None:
        settings = {"api_keys": [KEY], "rate_limit": 0, "seed": 12, "api": "ortto", **config}
        simulator = create_simulator(SimulatorConfig(**settings))
        assert isinstance(simulator, OrttoSimulator)
        self.simulator = simulator
        self.transport = RecordingTransport(simulator)
        self.refused: list[str] = []

    def destination(self, *, wrong_key: bool = False, **config: Any) -> OrttoDestination:
        settings: dict[str, Any] = {
            "base_url": "http://ortto.test/v1",
            "api_key": "not-the-key" if wrong_key else KEY,
            "rate_limit": 1000.0,
            "transport": self.transport,
            "max_attempts": 2,
            "backoff_base": 0.001,
            **config,
        }
        return OrttoDestination(ConnectionConfig(**settings))

    def refuse(self, email: str) -> None:
        self.refused.append(re.escape(email))
        self.simulator.faults.reject_emails(f"(?i)^({'|'.join(self.refused)})$")

    def list_titles(self) -> list[str]:
        return [audience.name for audience in self.simulator.state.audiences.values()]

    def members(self, list_id: str) -> set[str]:
        state = self.simulator.state
        return {email.lower() for email in state.emails(state.audiences[list_id].subscribers())}

    def has_contact(self, email: str) -> bool:
        return self.simulator.state.find(email) is not None

    def sent_records(self) -> list[Mapping[str, Any]]:
        return list(self.transport.records)

    def delete_list(self, list_id: str) -> None:
        del self.simulator.state.audiences[list_id]


class TestOrttoConformance(DestinationConformance):
    def harness(self) -> ConformanceHarness:
        return OrttoHarness()


# --- particular to Ortto ----------------------------------------------------------------


def test_custom_field_ids_are_ortto_shaped() -> None:
    catalogue = OrttoDestination.capabilities.catalogue
    assert catalogue.write_key(Target("custom", "Loyalty Tier", "string")) == "str:cm:loyalty-tier"
    assert catalogue.write_key(Target("custom", "Visits", "integer")) == "int:cm:visits"
    with pytest.raises(InputError, match="permission field"):
        catalogue.parse_target("bol::p")


def test_the_wire_is_one_merge_and_one_subscription_per_audience() -> None:
    item = UpsertItem(
        "Ann@Example.org",
        {"str::first": "Ann", "geo::city": "Porto"},
        {"str:cm:loyalty-tier": "Gold"},
        "aud-1",
    )
    assert OrttoDestination.preview(item) == {
        "person": {
            "fields": {
                "str::email": "Ann@Example.org",
                "str::first": "Ann",
                "geo::city": {"name": "Porto"},
                "str:cm:loyalty-tier": "Gold",
            }
        },
        "subscription": {"audience_id": "aud-1", "email": "Ann@Example.org", "subscribed": True},
    }
    for bad in ({"bol::p": True}, {"str::email": "x@y.org"}, {"Company": "x"}):
        with pytest.raises(InputError):
            OrttoDestination.preview(UpsertItem("a@b.org", bad))


async def test_a_batch_costs_one_merge_and_one_subscribe_per_audience() -> None:
    fake = OrttoHarness()
    async with fake.destination() as destination:
        gold = await destination.ensure_list("Gold")
        silver = await destination.ensure_list("Silver")
        caps = destination.capabilities
        items = [
            UpsertItem(f"p{i}@x.org", {"str::first": f"P{i}"}, {}, gold if i % 2 else silver)
            for i in range(caps.max_batch_size)
        ]
        fake.transport.requests.clear()
        result = await destination.upsert_batch(items)
    assert result.requests == 3
    paths = [path for _, path, _ in fake.transport.requests]
    assert paths == ["/v1/person/merge", "/v1/audience/subscribe", "/v1/audience/subscribe"]
    merge = fake.transport.requests[0][2]
    assert merge["merge_by"] == ["str::email"]
    assert merge["async"] is False
    assert len(fake.members(gold)) == len(fake.members(silver)) == 50


async def test_the_key_goes_in_x_api_key_and_a_refusal_names_ortto() -> None:
    fake = OrttoHarness()
    async with fake.destination(wrong_key=True) as destination:
        with pytest.raises(AuthenticationFailed, match="Ortto API key was rejected") as caught:
            await destination.existing_lists()
    assert "Autopilot" not in str(caught.value)
    async with fake.destination() as destination:
        info = await destination.check_credentials()
    assert info.instance_id == "ortto:ortto.test"
    method, path, _ = fake.transport.requests[-1]
    assert (method, path) == ("POST", "/v1/audiences/get")


async def test_a_429_waits_as_long_as_try_in_seconds_says(vtime: VirtualTime) -> None:
    fake = OrttoHarness(retry_after=7)
    fake.simulator.faults.throttle_next(1)
    config = {"clock": vtime.clock, "sleep": vtime.sleep, "max_attempts": 3}
    async with fake.destination(**config) as destination:
        assert await destination.existing_lists() == {}
        assert destination.throttled == 1
        assert destination.slowdown() is not None
    assert 7.0 in vtime.sleeps
    fake.simulator.faults.throttle_next(10)
    async with fake.destination(**config, min_rate_share=1.0) as destination:
        with pytest.raises(RateLimited, match="Ortto kept answering 429"):
            await destination.existing_lists()


async def test_audiences_and_members_are_read_page_after_page() -> None:
    fake = OrttoHarness()
    async with fake.destination() as destination:
        made = [await destination.ensure_list(f"Audience {n:02d}") for n in range(45)]
        fake.transport.requests.clear()
        assert list(await destination.existing_lists()) == made
        assert len(fake.transport.requests) == 2  # 40, then 5
        gold = made[0]
        for start in range(0, 600, 100):
            batch = [UpsertItem(f"m{i:04d}@x.org", list_id=gold) for i in range(start, start + 100)]
            await destination.upsert_batch(batch)
        fake.transport.requests.clear()
        members = [member.email async for member in destination.list_members(gold)]
        assert len(fake.transport.requests) == 2  # 500, then 100
    assert members == [f"m{i:04d}@x.org" for i in range(600)]


async def test_a_removed_member_is_unsubscribed_and_added_back_later() -> None:
    fake = OrttoHarness()
    async with fake.destination() as destination:
        gold = await destination.ensure_list("Gold")
        await destination.upsert_batch([UpsertItem("a@x.org", list_id=gold)])
        assert await destination.remove_membership(gold, "a@x.org") is True
        assert [m async for m in destination.list_members(gold)] == []
        await destination.upsert_batch([UpsertItem("a@x.org", list_id=gold)])
        assert fake.members(gold) == {"a@x.org"}
        assert await destination.remove_membership("no-such-audience", "a@x.org") is False


async def test_a_person_the_subscription_does_not_find_is_rejected_not_lost() -> None:
    fake = OrttoHarness()

    class LosesB(httpx.AsyncBaseTransport):
        """The simulator, except that b@x.org vanishes between the merge and the subscribe."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/audience/subscribe"):
                person = fake.simulator.state.find("b@x.org")
                if person is not None:
                    fake.simulator.state.archive(person)
            return await fake.transport.handle_async_request(request)

    async with fake.destination(transport=LosesB()) as destination:
        gold = await destination.ensure_list("Gold")
        items = [UpsertItem(email, list_id=gold) for email in ("a@x.org", "b@x.org")]
        result = await destination.upsert_batch(items)
    assert [o.ok for o in result.outcomes] == [True, False]
    assert "could not find the person" in str(result.outcomes[1].reason)
    assert fake.members(gold) == {"a@x.org"}
