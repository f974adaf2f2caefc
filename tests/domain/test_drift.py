"""Drift between a segment and its list (verify): orphans, missing members, deleted, renamed and
never-made lists, unsubscribed members, and the request estimate."""

from __future__ import annotations

from typing import Any

from segsync.domain.drift import (
    DriftReport,
    ListDrift,
    ListState,
    describe_drift,
    estimate,
    list_drift,
    normalised_members,
)
from segsync.domain.plan import RemovalPolicy

STORED = ("contactlist_1", "Gold")
REMOTE = {"contactlist_1": "Gold", "contactlist_9": "Other"}


def drift(**overrides: Any) -> ListDrift:
    args: dict[str, Any] = {
        "segment_key": "1",
        "segment_name": "Gold",
        "title": "Gold",
        "stored": STORED,
        "remote_titles": REMOTE,
        "members": {"a@x.org": False, "b@x.org": False, "stray@x.org": False},
        "desired": {"a@x.org", "b@x.org", "c@x.org"},
        "removal": RemovalPolicy.MIRROR,
    }
    args.update(overrides)
    return list_drift(**args)


def test_orphans_and_missing_members() -> None:
    found = drift()
    assert found.state is ListState.OK
    assert found.orphans == ["stray@x.org"]
    assert found.missing == ["c@x.org"]
    assert found.members_read == 3
    assert found.drift == 2


def test_unsubscribed_members_are_reported_never_drift() -> None:
    found = drift(
        members={"a@x.org": True, "stray@x.org": True, "b@x.org": False, "c@x.org": False}
    )
    assert found.unsubscribed == ["a@x.org", "stray@x.org"]
    assert (found.orphans, found.missing, found.drift) == ([], [], 0)


def test_add_only_keeps_those_who_left() -> None:
    found = drift(removal=RemovalPolicy.ADD_ONLY)
    assert (found.kept, found.orphans, found.drift) == (["stray@x.org"], [], 1)


def test_deleted_renamed_and_never_made_lists() -> None:
    deleted = drift(remote_titles={"contactlist_9": "Other"})
    assert deleted.state is ListState.DELETED
    assert deleted.missing == ["a@x.org", "b@x.org", "c@x.org"]
    assert deleted.drift == 4  # the list and its three members
    unreadable = drift(remote_titles=None, members=None)
    assert unreadable.state is ListState.DELETED
    renamed = drift(remote_titles={"contactlist_1": "Gold (old)"})
    assert (renamed.state, renamed.found_title, renamed.drift) == (
        ListState.RENAMED,
        "Gold (old)",
        3,
    )
    never = drift(stored=None, members=None)
    assert (never.state, never.list_gone, never.drift) == (ListState.NEVER_CREATED, True, 3)


def test_estimate_is_one_look_plus_a_page_per_hundred_members_at_least_one() -> None:
    cost = estimate({"1": 0, "2": 100, "3": 101, "4": 250})
    assert (cost.lists, cost.pages, cost.requests) == (4, 1 + 1 + 2 + 3, 8)


def test_report_totals_and_words() -> None:
    report = DriftReport([drift(), drift(remote_titles={"contactlist_9": "x"})], estimate({}))
    totals = report.totals()
    assert totals["orphans"] == 1
    assert totals["missing"] == 4
    assert totals["deleted_lists"] == 1
    assert report.drift == 6
    assert describe_drift(totals).startswith("1 orphan(s)")
    assert describe_drift({}) == "no drift"


def test_member_emails_are_normalised() -> None:
    assert normalised_members([(" A@X.org", False), ("a@x.org", True), ("", False)]) == {
        "a@x.org": True
    }
