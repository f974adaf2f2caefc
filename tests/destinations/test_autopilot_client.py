"""The Autopilot destination against scripted answers (httpx.MockTransport), on virtual time:
classification of HTTP outcomes, retries and backoff, and the request shapes the contract asks."""

from __future__ import annotations

import sys

import httpx
import pytest

from segsync.destinations.autopilot import AutopilotDestination
from segsync.destinations.base import UpsertItem
from segsync.errors import (
    AuthenticationFailed,
    FatalError,
    InputError,
    NotFound,
    RateLimited,
    RetriableError,
)
from tests.destinations.conftest import Script, VirtualTime, config_for, reply

OK_BULK = {"contact_ids": ["person_1"], "email_contact_map": {"a@x.org": "person_1"}}


def destination(script: Script, vtime: VirtualTime, **overrides: object) -> AutopilotDestination:
    return AutopilotDestination(config_for(script, vtime, **overrides))  # type: ignore[arg-type]


async def test_requests_carry_the_key_header_and_a_json_contact(vtime: VirtualTime) -> None:
    script = Script([reply(200, OK_BULK)])
    async with destination(script, vtime) as dest:
        result = await dest.upsert_batch(
            [
                UpsertItem(
                    "a@x.org",
                    {"FirstName": "Ana"},
                    {"integer--Review--Rating": 5},
                    list_id="contactlist_1",
                )
            ]
        )
    request = script.requests[0]
    assert request.method == "POST"
    assert request.url == "https://autopilot.test/v1/contacts"
    assert request.headers["autopilotapikey"] == "test-key"
    assert request.headers["content-type"] == "application/json"
    assert script.bodies()[0] == {
        "contacts": [
            {
                "Email": "a@x.org",
                "FirstName": "Ana",
                "custom": {"integer--Review--Rating": 5},
                "_autopilot_list": "contactlist_1",
            }
        ]
    }
    assert result.outcomes[0].ok
    assert result.outcomes[0].contact_id == "person_1"
    assert result.requests == 1


async def test_requests_go_straight_to_the_transport_and_send_no_cookie_back(
    vtime: VirtualTime,
) -> None:
    """Requests are made by httpx's client and handed straight to its transport, past the
    client's cookie jar: a cookie an answer sets is not sent back (the API uses none)."""
    cookie = {"Set-Cookie": "session=abc; Path=/"}
    script = Script([reply(200, {"lists": []}, headers=cookie), reply(200, {"lists": []})])
    async with destination(script, vtime) as dest:
        first = await dest.client.lists()
        second = await dest.client.lists()
    assert (first.status, first.data, second.data) == (200, {"lists": []}, {"lists": []})
    assert [r.url.path for r in script.requests] == ["/v1/lists", "/v1/lists"]
    assert "cookie" not in script.requests[1].headers
    assert script.requests[1].headers["autopilotapikey"] == "test-key"


async def test_custom_and_list_are_left_out_when_empty(vtime: VirtualTime) -> None:
    script = Script([reply(200, OK_BULK)])
    async with destination(script, vtime) as dest:
        await dest.upsert_batch([UpsertItem("a@x.org", {"LastName": "Ng"})])
    assert script.bodies()[0] == {"contacts": [{"Email": "a@x.org", "LastName": "Ng"}]}


@pytest.mark.parametrize("name", ["unsubscribed", "Unsubscribed", "_NewEmail", "Email", "custom"])
async def test_fields_that_must_not_be_sent_are_refused(vtime: VirtualTime, name: str) -> None:
    script = Script()
    async with destination(script, vtime) as dest:
        with pytest.raises(InputError, match=repr(name)[1:-1]):
            await dest.upsert_batch([UpsertItem("a@x.org", {name: False})])
    assert script.requests == []


async def test_custom_keys_must_be_in_write_shape(vtime: VirtualTime) -> None:
    async with destination(Script(), vtime) as dest:
        with pytest.raises(InputError, match="<type>--<Name>"):
            await dest.upsert_batch([UpsertItem("a@x.org", custom={"Rating": 5})])


async def test_batches_over_the_limit_or_with_a_repeated_email_are_refused(
    vtime: VirtualTime,
) -> None:
    async with destination(Script(), vtime) as dest:
        with pytest.raises(InputError, match="at most 100"):
            await dest.upsert_batch([UpsertItem(f"p{i}@x.org") for i in range(101)])
        with pytest.raises(InputError, match="same email twice"):
            await dest.upsert_batch([UpsertItem("a@x.org"), UpsertItem("A@x.org")])


async def test_server_errors_are_retried_with_growing_backoff(vtime: VirtualTime) -> None:
    script = Script([reply(500, {"message": "boom"}), reply(502), reply(200, OK_BULK)])
    async with destination(script, vtime) as dest:
        result = await dest.upsert_batch([UpsertItem("a@x.org")])
        assert dest.requests_made == 3
    assert result.outcomes[0].ok
    assert result.requests == 3
    # equal jitter with random() = 0.5: 3/4 of 0.5 s, then 3/4 of 1 s
    assert vtime.sleeps == [0.375, 0.75]


async def test_429_honours_retry_after_and_is_counted(vtime: VirtualTime) -> None:
    script = Script(
        [reply(429, {"message": "slow down"}, {"Retry-After": "7"}), reply(200, OK_BULK)]
    )
    async with destination(script, vtime) as dest:
        await dest.upsert_batch([UpsertItem("a@x.org")])
        assert dest.throttled == 1
        assert dest.requests_made == 2
    assert vtime.sleeps == [7.0]


async def test_transport_errors_and_408_are_retried(vtime: VirtualTime) -> None:
    script = Script(
        [
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
            reply(408, {"message": "timeout"}),
            reply(200, OK_BULK),
        ]
    )
    async with destination(script, vtime) as dest:
        result = await dest.upsert_batch([UpsertItem("a@x.org")])
    assert result.outcomes[0].ok
    assert result.requests == 4


async def test_a_rejected_key_fails_at_once_with_an_actionable_message(vtime: VirtualTime) -> None:
    script = Script([reply(401, {"message": "Provided autopilotapikey not valid."})])
    async with destination(script, vtime) as dest:
        with pytest.raises(AuthenticationFailed, match=r"API key was rejected \(401\).*Connect"):
            await dest.upsert_batch([UpsertItem("a@x.org")])
        assert dest.requests_made == 1
    assert vtime.sleeps == []


async def test_a_forbidden_key_fails_at_once(vtime: VirtualTime) -> None:
    script = Script([reply(403, {"message": "Forbidden"})])
    async with destination(script, vtime) as dest:
        with pytest.raises(AuthenticationFailed, match=r"403.*permissions"):
            await dest.get_contact("a@x.org")
        assert dest.requests_made == 1


async def test_exhausted_retries_raise_a_retriable_error(vtime: VirtualTime) -> None:
    script = Script([reply(503, {"message": "down"})] * 4)
    async with destination(script, vtime) as dest:
        with pytest.raises(RetriableError, match=r"503.*gave up after 4 attempts") as info:
            await dest.upsert_batch([UpsertItem("a@x.org")])
    assert not isinstance(info.value, RateLimited)
    assert len(script.requests) == 4


async def test_error_messages_do_not_contain_the_email(vtime: VirtualTime) -> None:
    script = Script([reply(500)] * 4)
    async with destination(script, vtime) as dest:
        with pytest.raises(RetriableError) as info:
            await dest.get_contact("secret.person@x.org")
    assert "secret.person" not in str(info.value)
    assert "/contact/{contact}" in str(info.value)


async def test_credentials_check_returns_the_instance_and_gives_up_quickly(
    vtime: VirtualTime,
) -> None:
    script = Script([reply(200, {"instanceId": "inst_1", "name": "Acme"})])
    async with destination(script, vtime) as dest:
        info = await dest.check_credentials()
    assert info.instance_id == "inst_1"
    assert info.raw["name"] == "Acme"
    assert script.requests[0].url.path == "/v1/account"

    down = Script([httpx.ConnectError("refused")] * 8)
    async with destination(down, vtime, max_attempts=8) as dest:
        with pytest.raises(RetriableError, match="could not reach Autopilot"):
            await dest.check_credentials()
    assert len(down.requests) == 3


async def test_credentials_check_against_something_else_says_check_the_base_url(
    vtime: VirtualTime,
) -> None:
    script = Script([reply(404, {"message": "Not Found"})])
    async with destination(script, vtime) as dest:
        with pytest.raises(FatalError, match="base URL"):
            await dest.check_credentials()


async def test_a_base_url_that_is_not_http_is_an_input_error(vtime: VirtualTime) -> None:
    config = config_for(Script(), vtime, base_url="ftp://example.org/v1", transport=None)
    async with AutopilotDestination(config) as dest:
        with pytest.raises(InputError, match="base URL"):
            await dest.check_credentials()


def test_an_empty_key_is_an_input_error(vtime: VirtualTime) -> None:
    with pytest.raises(InputError, match="API key is empty"):
        AutopilotDestination(config_for(Script(), vtime, api_key="  "))


async def test_emails_go_into_paths_unencoded_except_path_delimiters(vtime: VirtualTime) -> None:
    script = Script(fallback=lambda r: reply(404))
    async with destination(script, vtime) as dest:
        assert await dest.get_contact("a.b+tag@x.org") is None
        await dest.get_contact("o'neil!#1?@x.org")
    assert script.requests[0].url.raw_path == b"/v1/contact/a.b+tag@x.org"
    assert script.requests[1].url.raw_path == b"/v1/contact/o'neil!%231%3F@x.org"


async def test_forget_reports_whether_there_was_a_contact(vtime: VirtualTime) -> None:
    script = Script([reply(200, {}), reply(404)])
    async with destination(script, vtime) as dest:
        assert await dest.forget("a@x.org") is True
        assert await dest.forget("a@x.org") is False
    assert [r.method for r in script.requests] == ["DELETE", "DELETE"]


async def test_a_retried_delete_that_finds_nothing_counts_as_done(vtime: VirtualTime) -> None:
    # 408: Autopilot committed the delete but timed out; the retry then finds no contact.
    script = Script([reply(408), reply(404)])
    async with destination(script, vtime) as dest:
        assert await dest.forget("a@x.org") is True


async def test_membership_changes_report_not_modified(vtime: VirtualTime) -> None:
    script = Script(
        [
            reply(200, {}),
            reply(200, {"not_modified": True}),
            reply(200, {}),
            reply(200, {"not_modified": True}),
            reply(404, {"message": "Contact not in list."}),
            reply(404, {"message": "Contact could not be found."}),
        ]
    )
    async with destination(script, vtime) as dest:
        assert await dest.add_membership("contactlist_1", "a@x.org") is True
        assert await dest.add_membership("contactlist_1", "a@x.org") is False
        assert await dest.remove_membership("contactlist_1", "a@x.org") is True
        assert await dest.remove_membership("contactlist_1", "a@x.org") is False
        assert await dest.remove_membership("contactlist_1", "a@x.org") is False
        with pytest.raises(NotFound, match=r"a\*\*\*@x.org"):
            await dest.add_membership("contactlist_1", "ann@x.org")
    assert script.requests[0].url.path == "/v1/list/contactlist_1/contact/a@x.org"
    assert [r.method for r in script.requests[:4]] == ["POST", "POST", "DELETE", "DELETE"]


async def test_ensure_list_reuses_the_list_with_exactly_that_title(vtime: VirtualTime) -> None:
    lists = {
        "lists": [
            {"list_id": "contactlist_a", "title": "Lisbon big spenders (old)"},
            {"list_id": "contactlist_b", "title": "Lisbon big spenders"},
        ]
    }
    script = Script([reply(200, lists)])
    async with destination(script, vtime) as dest:
        assert await dest.ensure_list("Lisbon big spenders") == "contactlist_b"
    assert len(script.requests) == 1


async def test_ensure_list_creates_a_missing_list(vtime: VirtualTime) -> None:
    script = Script([reply(200, {"lists": []}), reply(200, {"list_id": "contactlist_new"})])
    async with destination(script, vtime) as dest:
        assert await dest.ensure_list("VIPs") == "contactlist_new"
    assert script.bodies()[1] == {"name": "VIPs"}


async def test_ensure_list_looks_again_after_an_ambiguous_create(vtime: VirtualTime) -> None:
    # The create timed out but happened: a blind retry would make a second list.
    script = Script(
        [
            reply(200, {"lists": []}),
            reply(500, {"message": "oops"}),
            reply(200, {"lists": [{"list_id": "contactlist_new", "title": "VIPs"}]}),
        ]
    )
    async with destination(script, vtime) as dest:
        assert await dest.ensure_list("VIPs") == "contactlist_new"
    assert [r.method for r in script.requests] == ["GET", "POST", "GET"]


async def test_ensure_list_given_the_known_lists_asks_for_them_only_after_an_ambiguous_create(
    vtime: VirtualTime,
) -> None:
    # The lists known (a run asked for them once, for all its lists) stand for the first look
    # only: after a create that may have happened, the look is asked for again.
    script = Script(
        [
            reply(500, {"message": "oops"}),
            reply(200, {"lists": [{"list_id": "contactlist_new", "title": "VIPs"}]}),
        ]
    )
    async with destination(script, vtime) as dest:
        known = {"contactlist_old": "VIPs (old)"}
        assert await dest.ensure_list("VIPs", known=known) == "contactlist_new"
    assert [r.method for r in script.requests] == ["POST", "GET"]


async def test_list_members_follows_bookmarks_to_the_last_page(vtime: VirtualTime) -> None:
    script = Script(
        [
            reply(200, {"contacts": [{"Email": "a@x.org"}], "bookmark": "person_A"}),
            reply(200, {"contacts": [{"Email": "b@x.org"}], "bookmark": "person_B"}),
            reply(200, {"contacts": [{"Email": "c@x.org"}], "total_contacts": 3}),
        ]
    )
    async with destination(script, vtime) as dest:
        emails = [m.email async for m in dest.list_members("contactlist_1")]
    assert emails == ["a@x.org", "b@x.org", "c@x.org"]
    assert [r.url.path for r in script.requests] == [
        "/v1/list/contactlist_1/contacts",
        "/v1/list/contactlist_1/contacts/person_A",
        "/v1/list/contactlist_1/contacts/person_B",
    ]


async def test_list_members_of_an_unknown_list_is_not_found(vtime: VirtualTime) -> None:
    async with destination(Script([reply(404)]), vtime) as dest:
        with pytest.raises(NotFound, match="no list contactlist_x"):
            [c async for c in dest.list_members("contactlist_x")]


async def test_in_flight_grows_with_the_latency_observed(vtime: VirtualTime) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        vtime.now += 0.4  # the answer takes 400 ms
        return reply(200, {"instanceId": "i"})

    async with destination(Script(fallback=slow), vtime, rate=5.0, burst_seconds=0.0) as dest:
        assert dest.max_in_flight() == 2
        await dest.check_credentials()
        assert dest.max_in_flight() == 3  # ceil(5 r/s × 0.4 s) + 1 (a one-token bucket)


async def test_in_flight_starts_with_the_buckets_burst(vtime: VirtualTime) -> None:
    """A full bucket lets its tokens leave at once: that many more requests in flight, until
    it is spent (then only what holds the rate)."""
    async with destination(Script([reply(200, OK_BULK)] * 20), vtime, rate=20.0) as dest:
        assert dest.max_in_flight() == 10  # 10 tokens (half a second of 20 r/s) may leave
        for _ in range(10):
            await dest.upsert_batch([UpsertItem("a@x.org")])
        assert dest.max_in_flight() == 2  # bucket spent; no latency seen (the clock stood)


async def test_ensure_list_does_not_loop_on_repeated_conflicts(vtime: VirtualTime) -> None:
    script = Script(
        fallback=lambda r: reply(200, {"lists": []}) if r.method == "GET" else reply(409, {})
    )
    async with destination(script, vtime) as dest:
        with pytest.raises(FatalError, match="409"):
            await dest.ensure_list("VIPs")
    assert [r.method for r in script.requests].count("POST") == 4


async def test_the_http_client_finds_sniffio() -> None:
    """httpcore asks sniffio which event loop runs, several times per request; without it each
    ask searches sys.path for the missing module again (pyproject.toml names it for that)."""
    from httpcore._synchronization import current_async_library

    assert current_async_library() == "asyncio"
    assert "sniffio" in sys.modules  # imported once: later asks are a dictionary look-up
