"""One refused contact never sinks its batch: the API's 400 is narrowed down to the bad ones."""

from __future__ import annotations

import json

import httpx
import pytest

from segsync.destinations.autopilot import AutopilotDestination
from segsync.destinations.autopilot.bulk import named_emails, named_positions
from segsync.destinations.base import UpsertItem
from segsync.errors import FatalError, RetriableError
from tests.destinations.conftest import Script, VirtualTime, config_for, reply


def accept_all(request: httpx.Request) -> httpx.Response:
    emails = [c["Email"] for c in json.loads(request.content)["contacts"]]
    return reply(
        200,
        {
            "contact_ids": [f"person_{e}" for e in emails],
            "email_contact_map": {e.lower(): f"person_{e}" for e in emails},
        },
    )


def refuse_if(bad: set[str], message: str = "Invalid contact."):
    def handler(request: httpx.Request) -> httpx.Response:
        emails = {c["Email"] for c in json.loads(request.content)["contacts"]}
        if emails & bad:
            return reply(400, {"error": "Bad Request", "message": message})
        return accept_all(request)

    return handler


def sent_emails(script: Script) -> list[list[str]]:
    return [[c["Email"] for c in body["contacts"]] for body in script.bodies()]


def items(n: int) -> list[UpsertItem]:
    return [UpsertItem(f"p{i}@x.org") for i in range(n)]


async def test_named_emails_are_rejected_and_the_rest_resent(vtime: VirtualTime) -> None:
    message = "Rejected email address(es): p1@x.org, P3@X.ORG."
    script = Script([reply(400, {"error": "Bad Request", "message": message})], accept_all)
    async with AutopilotDestination(config_for(script, vtime)) as dest:
        result = await dest.upsert_batch(items(5))
    assert [o.ok for o in result.outcomes] == [True, False, True, False, True]
    assert result.outcomes[1].reason == message
    assert result.outcomes[3].email == "p3@x.org"
    assert result.outcomes[4].contact_id == "person_p4@x.org"
    assert sent_emails(script)[1] == ["p0@x.org", "p2@x.org", "p4@x.org"]
    assert result.requests == 2
    assert [o.email for o in result.rejected] == ["p1@x.org", "p3@x.org"]


async def test_unnamed_refusals_are_found_by_bisection(vtime: VirtualTime) -> None:
    script = Script(fallback=refuse_if({"p5@x.org"}))
    async with AutopilotDestination(config_for(script, vtime)) as dest:
        result = await dest.upsert_batch(items(8))
    assert [o.ok for o in result.outcomes] == [True] * 5 + [False] + [True] * 2
    assert result.outcomes[5].reason == "Invalid contact."
    # 8 → [0..3] ok, [4..7] → [4,5] → [4] ok, [5] refused; [6,7] ok
    assert result.requests == 7
    assert sorted(map(len, sent_emails(script))) == [1, 1, 2, 2, 4, 4, 8]


async def test_every_refused_contact_is_isolated_even_when_all_are(vtime: VirtualTime) -> None:
    bad = {f"p{i}@x.org" for i in range(4)}
    script = Script(fallback=refuse_if(bad))
    async with AutopilotDestination(config_for(script, vtime)) as dest:
        result = await dest.upsert_batch(items(4))
    assert not any(o.ok for o in result.outcomes)
    assert result.requests == 7  # 2n - 1


async def test_contacts_named_by_position_are_rejected(vtime: VirtualTime) -> None:
    message = "contacts[2]: Email 'p2' is not a valid email address."
    script = Script([reply(400, {"message": message})], accept_all)
    async with AutopilotDestination(config_for(script, vtime)) as dest:
        result = await dest.upsert_batch(items(4))
    assert [o.ok for o in result.outcomes] == [True, True, False, True]
    assert result.requests == 2


@pytest.mark.parametrize(
    "message",
    [
        "The request body is not valid JSON.",
        'The body must be {"contacts": [...]} with a list of contacts.',
        "At most 100 contacts per request; this one has 101.",
        "No autopilotapikey header provided.",
    ],
)
async def test_a_400_about_the_request_itself_is_a_fatal_bug(
    vtime: VirtualTime, message: str
) -> None:
    script = Script([reply(400, {"message": message})])
    async with AutopilotDestination(config_for(script, vtime)) as dest:
        with pytest.raises(FatalError, match="bug in segsync"):
            await dest.upsert_batch(items(3))
    assert len(script.requests) == 1


async def test_retries_inside_isolation_are_counted(vtime: VirtualTime) -> None:
    message = "Rejected email address(es): p0@x.org"
    script = Script([reply(503), reply(400, {"message": message}), reply(429)], accept_all)
    async with AutopilotDestination(config_for(script, vtime)) as dest:
        result = await dest.upsert_batch(items(2))
    assert [o.ok for o in result.outcomes] == [False, True]
    assert result.requests == 4


async def test_a_transient_failure_that_persists_fails_the_batch(vtime: VirtualTime) -> None:
    script = Script(fallback=lambda r: reply(500))
    async with AutopilotDestination(config_for(script, vtime, max_attempts=2)) as dest:
        with pytest.raises(RetriableError):
            await dest.upsert_batch(items(2))


def test_emails_are_recognised_in_a_message_as_whole_addresses() -> None:
    emails = ["a@x.org", "ba@x.org", "o'neil@x.org", "c@x.org"]
    message = "Rejected email address(es): ba@x.org, 'o'neil@x.org'; see <C@x.org>."
    assert named_emails(message, emails) == {"ba@x.org", "o'neil@x.org", "c@x.org"}
    assert named_positions("contacts[3]: bad, contacts[120]: bad", 100) == {3}
